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

/* Fill cfg with defaults pointed at the test server; false if none runs. */
static inline bool live_config(rag_config *cfg)
{
	const char *dir = getenv("RAGMAP_TEST_S3_DIR");
	char path[1024], port[32] = "", endpoint[64];
	rag_error err = {0};
	FILE *f;

	if (!dir)
		return false;
	snprintf(path, sizeof(path), "%s/s3.port", dir);
	if (!(f = fopen(path, "r")))
		return false;
	if (!fgets(port, sizeof(port), f))
		port[0] = '\0';
	fclose(f);
	port[strcspn(port, "\r\n")] = '\0';
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%s", port);
	if (rag_config_init(cfg))
		return false;
	rag_config_set(cfg, "s3", "endpoint", endpoint, &err);
	rag_config_set(cfg, "s3", "access_key_id", "S3RVER", &err);
	rag_config_set(cfg, "s3", "secret_access_key", "S3RVER", &err);
	return true;
}

/* A prefix unique to this process, so reruns never see old objects. */
static inline void live_prefix(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "test/%s-%d-%llu/", name, (int)getpid(),
		 (unsigned long long)(rag_now_ns() % 1000000007ull));
}

#endif
