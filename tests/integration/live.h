/*
 * Helpers for integration tests that run against the local S3 server that
 * the ctest fixture "s3" starts (scripts/s3-local.sh, ephemeral port).
 */
#ifndef LIVE_H
#define LIVE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rag_config.h"
#include "rag_util.h"

/*
 * Fill cfg with defaults pointed at the test server, from the NAME=VALUE
 * lines of its s3.env (endpoint and credentials). false if none runs.
 */
static inline bool live_config(rag_config *cfg)
{
	static const struct { const char *var, *key; } vars[] = {
		{"AWS_ENDPOINT_URL=", "endpoint"},
		{"AWS_ACCESS_KEY_ID=", "access_key_id"},
		{"AWS_SECRET_ACCESS_KEY=", "secret_access_key"},
	};
	const char *dir = getenv("RAGMAP_TEST_S3_DIR");
	char path[1024], line[1024];
	rag_error err = {0};
	int found = 0;
	FILE *f;

	if (!dir)
		return false;
	snprintf(path, sizeof(path), "%s/s3.env", dir);
	if (!(f = fopen(path, "r")))
		return false;
	if (rag_config_init(cfg)) {
		fclose(f);
		return false;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
			size_t n = strlen(vars[i].var);
			if (strncmp(line, vars[i].var, n) == 0 &&
			    rag_config_set(cfg, "s3", vars[i].key, line + n, &err) == RAG_OK)
				found++;
		}
	}
	fclose(f);
	if (found != 3) {
		rag_config_release(cfg);
		return false;
	}
	return true;
}

/* A prefix unique to this process, so reruns never see old objects. */
static inline void live_prefix(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "test/%s-%d-%llu/", name, (int)getpid(),
		 (unsigned long long)(rag_now_ns() % 1000000007ull));
}

#endif
