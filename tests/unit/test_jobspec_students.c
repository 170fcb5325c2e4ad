/* layers: stages store common */
/* An eval job's "students" (stages/jobspec.c): parsed, normalized and
 * refused where it does not apply. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "stages/jobspec.h"

static void refused(const char *text, const char *field, const char *msg)
{
	json_t *spec = json_loads(text, 0, NULL);
	struct jobspec js;
	struct mt_err e = { 0 };

	assert_non_null(spec);
	assert_int_equal(jobspec_parse(spec, &js, &e), -EINVAL);
	assert_string_equal(e.field, field);
	assert_string_equal(e.message, msg);
	json_decref(spec);
}

static void test_students(void **state)
{
	json_t *spec = json_loads("{\"dataset\":\"d\",\"kind\":\"eval\",\"students\":[\"a\","
				  "\"student.b\",\"c\"]}", 0, NULL), *norm;
	struct jobspec js;
	struct mt_err e = { 0 };
	(void)state;

	assert_int_equal(jobspec_parse(spec, &js, &e), 0);
	assert_int_equal(js.nstudents, 3);
	assert_string_equal(js.students[0], "student.a");
	assert_string_equal(js.students[1], "student.b");
	assert_string_equal(js.student, "student.a"); /* the first */
	norm = jobspec_to_json(&js);
	assert_int_equal(json_array_size(json_object_get(norm, "students")), 3);
	assert_string_equal(json_string_value(json_object_get(norm, "student")), "student.a");
	/* the stored spec parses back the same */
	assert_int_equal(jobspec_parse(norm, &js, &e), 0);
	assert_int_equal(js.nstudents, 3);
	assert_string_equal(js.students[2], "student.c");
	json_decref(norm);
	json_decref(spec);
	/* one student: no "students" in the normalized spec */
	spec = json_loads("{\"dataset\":\"d\",\"kind\":\"eval\",\"student\":\"a\"}", 0, NULL);
	assert_int_equal(jobspec_parse(spec, &js, &e), 0);
	assert_int_equal(js.nstudents, 0);
	norm = jobspec_to_json(&js);
	assert_null(json_object_get(norm, "students"));
	json_decref(norm);
	json_decref(spec);

	refused("{\"dataset\":\"d\",\"kind\":\"pipeline\",\"teacher\":\"t\",\"students\":[\"a\"]}",
		"students", "students is for eval jobs; a pipeline job has one student");
	refused("{\"dataset\":\"d\",\"kind\":\"eval\",\"students\":[]}", "students",
		"students must be an array of 1 to 16 endpoint names");
	refused("{\"dataset\":\"d\",\"kind\":\"eval\",\"students\":\"a\"}", "students",
		"students must be an array of 1 to 16 endpoint names");
	refused("{\"dataset\":\"d\",\"kind\":\"eval\",\"students\":[\"a\",\"student.a\"]}", "students",
		"students names student.a twice");
	refused("{\"dataset\":\"d\",\"kind\":\"eval\",\"students\":[\"a\",3]}", "students",
		"student must be a string");
	refused("{\"dataset\":\"d\",\"kind\":\"eval\",\"student\":\"b\",\"students\":[\"a\",\"b\"]}",
		"student", "student must be the first of students (or left out)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_students),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
