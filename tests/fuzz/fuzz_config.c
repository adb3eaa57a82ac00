/*
 * Configuration files (rag_config.h): the bytes as an INI file over the
 * defaults, through the real loader (inih reads it from a memfd). A file
 * that loads gives a configuration that shows and releases cleanly; one
 * that does not gives "path:line: ..." in the error.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "rag_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	rag_config cfg;
	rag_error err = {0};
	FILE *null;

	if (fd < 0) {
		fd = memfd_create("fuzz-config", 0);
		FUZZ_CHECK(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	for (size_t done = 0; done < size;) {
		ssize_t w = write(fd, data + done, size - done);
		FUZZ_CHECK(w > 0);
		done += (size_t)w;
	}
	FUZZ_CHECK(rag_config_init(&cfg) == RAG_OK);
	if (rag_config_load_file(&cfg, path, &err) == RAG_OK) {
		if ((null = fopen("/dev/null", "w"))) {
			rag_config_show(&cfg, null);
			fclose(null);
		}
	} else {
		FUZZ_CHECK(strncmp(err.msg, path, strlen(path)) == 0);
	}
	rag_config_release(&cfg);
	return 0;
}
