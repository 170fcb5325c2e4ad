/* layers: common */
/* Fuzz target: base64 text from outside (data: URLs of images, mask RLE,
 * stored embeddings; common/base64.h). Checks: a decode either fails naming
 * the bad offset inside the input or yields bytes that encode back to the
 * same text (canonical padding), and encoding any bytes decodes back. */
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = malloc(size / 4 * 3 + 3);
	char *enc = malloc(base64_len(size) + 1);
	size_t bad = (size_t)-1;
	long n;

	if (!out || !enc)
		goto out;
	n = base64_decode((const char *)data, size, out, &bad);
	if (n < 0) {
		fuzz_assert(bad <= size);
	} else {
		char *back = malloc(base64_len((size_t)n) + 1);
		size_t m;

		fuzz_assert((size_t)n <= size / 4 * 3 + 2);
		if (back) {
			m = base64_encode(out, (size_t)n, back);
			fuzz_assert(m == base64_len((size_t)n));
			/* same bytes again from the canonical text */
			n = base64_decode(back, m, out, &bad);
			fuzz_assert(n >= 0);
			free(back);
		}
	}
	/* any bytes: encode, then decode to the same bytes */
	{
		size_t m = base64_encode(data, size, enc);
		unsigned char *dec = malloc(size + 3);

		fuzz_assert(m == base64_len(size));
		if (dec) {
			n = base64_decode(enc, m, dec, &bad);
			fuzz_assert(n == (long)size && memcmp(dec, data, size) == 0);
			free(dec);
		}
	}
out:
	free(out);
	free(enc);
	return 0;
}
