#include "store/evalround.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

static int rename_rows(struct store *st, const char *del_sql, const char *upd_sql, int64_t job,
		       const char *from, const char *to)
{
	sqlite3_stmt *s = store_stmt(st, del_sql);
	int rc = s ? store_bind(st, s, "it", job, to) : -EIO;

	if (rc == 0)
		rc = store_step_done(st, s, "archiving an eval round");
	if (rc)
		return rc;
	s = store_stmt(st, upd_sql);
	rc = s ? store_bind(st, s, "itt", job, to, from) : -EIO;
	if (rc == 0)
		rc = store_step_done(st, s, "archiving an eval round");
	return rc;
}

int store_eval_round_archive(struct store *st, int64_t job, const char *kind,
			     const char *const *steps, const char *suffix)
{
	static const char art_del[] = "DELETE FROM artifacts WHERE job_id = ?1 AND kind = ?2";
	static const char art_upd[] = "UPDATE artifacts SET kind = ?2 WHERE job_id = ?1 AND kind = ?3";
	static const char task_del[] = "DELETE FROM tasks WHERE job_id = ?1 AND step = ?2";
	static const char task_upd[] = "UPDATE tasks SET step = ?2 WHERE job_id = ?1 AND step = ?3";
	char to[420];
	int rc;

	if (!kind || !*kind || !suffix || !*suffix || strlen(kind) > 200 || strlen(suffix) > 200)
		return -EINVAL;
	rc = store_begin(st);
	if (rc)
		return rc;
	snprintf(to, sizeof(to), "%s@%s", kind, suffix);
	rc = rename_rows(st, art_del, art_upd, job, kind, to);
	for (size_t i = 0; rc == 0 && steps && steps[i]; i++) {
		if (!*steps[i] || strlen(steps[i]) > 200) {
			rc = -EINVAL;
			break;
		}
		snprintf(to, sizeof(to), "%s@%s", steps[i], suffix);
		rc = rename_rows(st, task_del, task_upd, job, steps[i], to);
	}
	if (rc) {
		store_rollback(st);
		return rc;
	}
	return store_commit(st);
}
