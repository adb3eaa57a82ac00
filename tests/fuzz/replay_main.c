/*
 * replay_main.c — a main() for the fuzz targets without libFuzzer: run
 * LLVMFuzzerTestOneInput once on every file named, or on every file of
 * every directory named. The ctest tests fuzz.replay.<target> use it to
 * replay the committed seeds and crash regressions in every build (the
 * sanitizer build included):
 *
 *   fuzz_<t> CORPUS [MORE...]
 *
 * CORPUS (tests/fuzz/corpus/<t>, which every target has) must exist and
 * hold at least one input, so a renamed or emptied corpus cannot pass with
 * nothing run. A MORE path may be absent: tests/fuzz/regress/<t> exists
 * only once a crash of that target has been fixed (run.sh says so), and
 * most targets have none. Exit 0 when all ran, 1 on a missing corpus, no
 * input or an unreadable one; a broken invariant aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(buf = malloc((size_t)len + 1)) || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "replay: cannot read \"%s\"\n", path);
		if (f)
			fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	int failed = 0, ran = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS [MORE...]\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;
		char **names = NULL;
		size_t n = 0, cap = 0;

		if (stat(argv[i], &st) != 0) {
			/* only a later path may be absent (no regressions yet) */
			if (i > 1 && errno == ENOENT)
				continue;
			fprintf(stderr, "replay: \"%s\": %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed += run_file(argv[i]);
			ran++;
			continue;
		}
		if (!(d = opendir(argv[i]))) {
			fprintf(stderr, "replay: cannot open \"%s\": %s\n", argv[i], strerror(errno));
			return 1;
		}
		while ((e = readdir(d))) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				if (!(names = realloc(names, cap * sizeof(*names))))
					return 1;
			}
			if (!(names[n++] = strdup(path)))
				return 1;
		}
		closedir(d);
		qsort(names, n, sizeof(*names), cmp);
		for (size_t j = 0; j < n; j++) {
			failed += run_file(names[j]);
			ran++;
			free(names[j]);
		}
		free(names);
		if (i == 1 && n == 0) {
			fprintf(stderr, "replay: corpus \"%s\" has no inputs\n", argv[i]);
			return 1;
		}
	}
	printf("replayed %d inputs, %d unreadable\n", ran, failed);
	return failed ? 1 : 0;
}
