/* Unit tests for src/core: errors, buffers, parsing helpers, configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rag_buf.h"
#include "rag_config.h"
#include "rag_err.h"
#include "rag_util.h"

static void test_err_names(void **state)
{
	rag_error e = {0};

	(void)state;
	assert_string_equal(rag_rc_name(RAG_ENOTFOUND), "NOTFOUND");
	assert_string_equal(rag_rc_message(RAG_ETOOBIG), "size limit exceeded");
	assert_true(rag_rc_transient(RAG_ENET));
	assert_false(rag_rc_transient(RAG_ENOTFOUND));
	assert_int_equal(rag_error_set(&e, RAG_EIO, "cannot read \"%s\"", "x"), RAG_EIO);
	rag_error_prefix(&e, "ingest");
	assert_string_equal(e.msg, "ingest: cannot read \"x\"");
}

static void test_buf_cap(void **state)
{
	rag_buf b;

	(void)state;
	rag_buf_init(&b, 10);
	assert_int_equal(rag_buf_puts(&b, "hello"), RAG_OK);
	assert_int_equal(rag_buf_printf(&b, "%d", 12345), RAG_OK);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "hello12345");
	/* past the cap: refused, contents untouched */
	assert_int_equal(rag_buf_putc(&b, 'x'), RAG_ETOOBIG);
	assert_int_equal(b.len, 10);
	assert_int_equal(rag_buf_append(&b, "", 0), RAG_OK);
	rag_buf_release(&b);
	assert_null(b.data);
}

static void test_parse_helpers(void **state)
{
	int64_t i;
	uint64_t u;
	bool b;
	char buf[32];

	(void)state;
	assert_true(rag_parse_i64("-42", &i) && i == -42);
	assert_false(rag_parse_i64("42x", &i));
	assert_false(rag_parse_i64("", &i));
	assert_false(rag_parse_i64("99999999999999999999", &i));
	assert_true(rag_parse_size("8MiB", &u) && u == 8u << 20);
	assert_true(rag_parse_size("5 M", &u) && u == 5u << 20);
	assert_true(rag_parse_size("100", &u) && u == 100);
	assert_false(rag_parse_size("5 parsecs", &u));
	assert_false(rag_parse_size("-5", &u));
	assert_true(rag_parse_bool("Yes", &b) && b);
	assert_true(rag_parse_bool("off", &b) && !b);
	assert_false(rag_parse_bool("maybe", &b));
	assert_string_equal(rag_fmt_bytes(12698, buf, sizeof(buf)), "12.4 KiB");
	assert_string_equal(rag_fmt_bytes(17, buf, sizeof(buf)), "17 B");
	assert_true(rag_utf8_valid("h\xc3\xa9", 3));
	assert_false(rag_utf8_valid("h\xc3", 2));          /* truncated */
	assert_false(rag_utf8_valid("\xc0\xaf", 2));       /* overlong */
	assert_false(rag_utf8_valid("\xed\xa0\x80", 3));   /* surrogate */
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/ragmap-conf-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void clear_env(void)
{
	unsetenv("RAGMAP_CONFIG");
	unsetenv("RAGMAP_S3_BUCKET");
	unsetenv("RAGMAP_SOURCE_PREFIX");
	unsetenv("RAGMAP_S3_MAX_RETRIES");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_REGION");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("RAGMAP_S3_ENDPOINT");
	unsetenv("RAGMAP_S3_BUKKET");
	unsetenv("RAGMAP_S3_Bucket");
	unsetenv("RAGMAP_QUERY_MODE");
	unsetenv("RAGMAP_QUERY_HYBRID_METHOD");
	unsetenv("RAGMAP_LOCAL_KEY_ID");
	unsetenv("RAGMAP_TEST_CONFIG_NOT_A_SETTING");
	unsetenv("RAGMAP_BUKKET");
}

static void test_config_file_and_env(void **state)
{
	char *path = write_tmp("; comment\n[s3]\nbucket = docs\nendpoint = http://h:1\n"
			       "path_style = false\npart_size = 6MiB\n[source]\nprefix = in/\n");
	rag_config cfg;
	rag_error err = {0};

	(void)state;
	clear_env();
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_string_equal(cfg.s3.bucket, "docs");
	assert_string_equal(cfg.source.prefix, "in/");
	assert_false(cfg.s3.path_style);
	assert_int_equal(cfg.s3.part_size, 6u << 20);
	assert_string_equal(cfg.index.name, "main"); /* default kept */
	rag_config_release(&cfg);

	/* RAGMAP_* beats AWS_* beats the file */
	setenv("AWS_ENDPOINT_URL", "http://aws:2", 1);
	setenv("RAGMAP_S3_BUCKET", "other", 1);
	setenv("RAGMAP_SOURCE_PREFIX", "src2/", 1);
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_string_equal(cfg.s3.endpoint, "http://aws:2");
	assert_string_equal(cfg.s3.bucket, "other");
	assert_string_equal(cfg.source.prefix, "src2/");
	rag_config_release(&cfg);
	setenv("RAGMAP_S3_ENDPOINT", "http://mine:3", 1);
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_string_equal(cfg.s3.endpoint, "http://mine:3");
	rag_config_release(&cfg);
	unsetenv("RAGMAP_S3_ENDPOINT");

	/* a bad value in the environment names the variable */
	setenv("RAGMAP_S3_MAX_RETRIES", "many", 1);
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_ECONFIG);
	assert_non_null(strstr(err.msg, "RAGMAP_S3_MAX_RETRIES"));
	clear_env();
	unlink(path);
	free(path);
}

static void test_config_errors_name_line_and_key(void **state)
{
	char *unknown = write_tmp("[s3]\nbucket = a\n\nbukket = b\n");
	char *badval = write_tmp("[s3]\nmax_retries = lots\n");
	char *badsec = write_tmp("[nope]\nx = 1\n");
	char *range = write_tmp("[s3]\npart_size = 1MiB\n");
	rag_config cfg;
	rag_error err = {0};
	char want[512];

	(void)state;
	clear_env();
	assert_int_equal(rag_config_load(&cfg, unknown, &err), RAG_ECONFIG);
	snprintf(want, sizeof(want), "%s:4: unknown key \"bukket\" in section [s3]", unknown);
	assert_string_equal(err.msg, want);
	assert_int_equal(rag_config_load(&cfg, badval, &err), RAG_ECONFIG);
	assert_non_null(strstr(err.msg, ":2: s3.max_retries: \"lots\""));
	assert_int_equal(rag_config_load(&cfg, badsec, &err), RAG_ECONFIG);
	assert_non_null(strstr(err.msg, ":2: unknown section [nope]"));
	/* S3 parts are at least 5 MiB */
	assert_int_equal(rag_config_load(&cfg, range, &err), RAG_ECONFIG);
	assert_non_null(strstr(err.msg, "s3.part_size"));
	assert_int_equal(rag_config_load(&cfg, "/nonexistent/ragmap.conf", &err), RAG_ECONFIG);
	assert_non_null(strstr(err.msg, "/nonexistent/ragmap.conf"));
	unlink(unknown), unlink(badval), unlink(badsec), unlink(range);
	free(unknown), free(badval), free(badsec), free(range);
}

/* index.name becomes a directory under local.dir: one safe segment only */
static void test_config_names_stay_one_segment(void **state)
{
	static const char *bad[] = {"..", ".", "../x", "a/b", "/etc", ".hidden", "a\\b", "",
				    "\xef\xbc\x8e\xef\xbc\x8e", "a b", "x\ny"};
	rag_config cfg;
	rag_error err = {0};

	(void)state;
	clear_env();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("RAGMAP_INDEX_NAME", bad[i], 1);
		assert_int_equal(rag_config_load(&cfg, NULL, &err), RAG_ECONFIG);
		assert_non_null(strstr(err.msg, "index.name"));
	}
	setenv("RAGMAP_INDEX_NAME", "main-2.v_1", 1);
	assert_int_equal(rag_config_load(&cfg, NULL, &err), RAG_OK);
	assert_string_equal(cfg.index.name, "main-2.v_1");
	rag_config_release(&cfg);
	unsetenv("RAGMAP_INDEX_NAME");
}

static void test_config_secrets_never_shown(void **state)
{
	char *path = write_tmp("[s3]\nsecret_access_key = TOPSECRETVALUE\n");
	rag_config cfg;
	rag_error err = {0};
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIDSECRETID", 1);
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_string_equal(cfg.s3.secret_access_key, "TOPSECRETVALUE");
	f = open_memstream(&out, &len);
	rag_config_show(&cfg, f);
	fclose(f);
	assert_null(strstr(out, "TOPSECRETVALUE"));
	assert_null(strstr(out, "AKIDSECRETID"));
	assert_non_null(strstr(out, "<redacted>"));
	free(out);
	rag_config_release(&cfg);
	/* nor in the error for a bad secret-typed value */
	clear_env();
	unlink(path);
	free(path);
}

/*
 * The environment is as strict as the file: RAGMAP_<SECTION>_... must be a
 * setting; names that start with no section are left alone, and so are the
 * listed non-settings that do (RAGMAP_SOURCE_DIR, RAGMAP_LOCAL_KEY_ID).
 */
static void test_config_env_strict(void **state)
{
	static const struct {
		const char *name, *value;
		rag_rc want;
		const char *msg; /* a part of the message */
	} cases[] = {
		{"RAGMAP_S3_BUKKET", "x", RAG_ECONFIG,
		 "environment variable RAGMAP_S3_BUKKET: unknown key \"bukket\" in section [s3]"},
		{"RAGMAP_S3_BUKKET", "", RAG_ECONFIG, "RAGMAP_S3_BUKKET"}, /* empty still counts */
		{"RAGMAP_S3_Bucket", "x", RAG_ECONFIG, "upper case: RAGMAP_S3_BUCKET"},
		{"RAGMAP_QUERY_MODE", "foo", RAG_OK, NULL}, /* a setting: checked by its owner */
		{"RAGMAP_QUERY_HYBRID_METHOD", "foo", RAG_ECONFIG,
		 "RAGMAP_QUERY_HYBRID_METHOD: query.hybrid_method: \"foo\" is not one of zscore, rrf"},
		{"RAGMAP_QUERY_HYBRID_METHOD", "rrf", RAG_OK, NULL},
		{"RAGMAP_SOURCE_DIR", "/src", RAG_OK, NULL},     /* ctest sets it */
		{"RAGMAP_LOCAL_KEY_ID", "k", RAG_OK, NULL},      /* scripts/s3-local.sh */
		{"RAGMAP_TEST_CONFIG_NOT_A_SETTING", "1", RAG_OK, NULL}, /* no section */
		{"RAGMAP_BUKKET", "x", RAG_OK, NULL},            /* no section: not ours */
	};
	rag_config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rag_error err = {0};
		rag_rc rc;

		clear_env();
		setenv(cases[i].name, cases[i].value, 1);
		rc = rag_config_load(&cfg, NULL, &err);
		if (rc != cases[i].want)
			fail_msg("%s=%s: rc %d (%s), want %d", cases[i].name, cases[i].value, rc,
				 err.msg, cases[i].want);
		if (rc == RAG_OK)
			rag_config_release(&cfg);
		else if (!strstr(err.msg, cases[i].msg))
			fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].name, err.msg, cases[i].msg);
	}
	clear_env();
}

static void test_config_choice_in_file(void **state)
{
	char *bad = write_tmp("[query]\n\nhybrid_method = sum\n");
	rag_config cfg;
	rag_error err = {0};
	char want[512];

	(void)state;
	clear_env();
	assert_int_equal(rag_config_load(&cfg, bad, &err), RAG_ECONFIG);
	snprintf(want, sizeof(want), "%s:3: query.hybrid_method: \"sum\" is not one of zscore, rrf",
		 bad);
	assert_string_equal(err.msg, want);
	unlink(bad);
	free(bad);
}

static void test_config_origin(void **state)
{
	char *path = write_tmp("[s3]\nbucket = docs\n[query]\nmode = nope\n");
	rag_config cfg;
	rag_error err = {0};
	char what[512];

	(void)state;
	clear_env();
	assert_int_equal(rag_config_load(&cfg, NULL, &err), RAG_OK);
	assert_int_equal(rag_config_origin_of(&cfg, "s3", "endpoint", what, sizeof(what)),
			 RAG_CFG_DEFAULT);
	assert_string_equal(what, "the built-in default (no config file, no AWS_ENDPOINT_URL, "
				  "no RAGMAP_S3_ENDPOINT)");
	assert_int_equal(rag_config_origin_of(&cfg, "index", "name", what, sizeof(what)),
			 RAG_CFG_DEFAULT);
	assert_string_equal(what, "the built-in default (no config file, no RAGMAP_INDEX_NAME)");
	assert_int_equal(rag_config_set(&cfg, "s3", "region", "eu-west-1", &err), RAG_OK);
	assert_int_equal(rag_config_origin_of(&cfg, "s3", "region", NULL, 0), RAG_CFG_SET);
	assert_int_equal(rag_config_origin_of(&cfg, "s3", "nope", what, sizeof(what)),
			 RAG_CFG_DEFAULT);
	rag_config_release(&cfg);

	setenv("AWS_ENDPOINT_URL", "http://aws:2", 1);
	setenv("RAGMAP_QUERY_MODE", "memory", 1);
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_int_equal(rag_config_origin_of(&cfg, "s3", "endpoint", what, sizeof(what)),
			 RAG_CFG_AWS_ENV);
	assert_string_equal(what, "environment variable AWS_ENDPOINT_URL");
	assert_int_equal(rag_config_origin_of(&cfg, "s3", "bucket", what, sizeof(what)),
			 RAG_CFG_FILE);
	assert_string_equal(what, path);
	assert_int_equal(rag_config_origin_of(&cfg, "query", "mode", what, sizeof(what)),
			 RAG_CFG_ENV);
	assert_string_equal(what, "environment variable RAGMAP_QUERY_MODE");
	assert_int_equal(rag_config_origin_of(&cfg, "s3", "region", what, sizeof(what)),
			 RAG_CFG_DEFAULT);
	assert_non_null(strstr(what, "(no s3.region in "));
	rag_config_release(&cfg);
	clear_env();
	unlink(path);
	free(path);
}

static bool is_memory(const char *v)
{
	return strcmp(v, "memory") == 0;
}

/* rag_config_check: a value only a higher module can judge, named with its origin */
static void test_config_check(void **state)
{
	char *path = write_tmp("[query]\nmode = nope\n");
	rag_config cfg;
	rag_error err = {0};
	char want[512];

	(void)state;
	clear_env();
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_int_equal(rag_config_check(&cfg, "query", "mode", is_memory, "memory", &err),
			 RAG_ECONFIG);
	snprintf(want, sizeof(want), "%s: query.mode: \"nope\" is not one of memory", path);
	assert_string_equal(err.msg, want);
	assert_int_equal(rag_config_check(&cfg, "query", "threads", is_memory, "x", &err),
			 RAG_EINVAL);
	assert_int_equal(rag_config_check(&cfg, "query", "token", is_memory, "x", &err),
			 RAG_EINVAL); /* a secret is never echoed */
	rag_config_release(&cfg);
	setenv("RAGMAP_QUERY_MODE", "foo", 1);
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_int_equal(rag_config_check(&cfg, "query", "mode", is_memory, "memory", &err),
			 RAG_ECONFIG);
	assert_string_equal(err.msg, "environment variable RAGMAP_QUERY_MODE: query.mode: "
				     "\"foo\" is not one of memory");
	setenv("RAGMAP_QUERY_MODE", "memory", 1);
	rag_config_release(&cfg);
	assert_int_equal(rag_config_load(&cfg, path, &err), RAG_OK);
	assert_int_equal(rag_config_check(&cfg, "query", "mode", is_memory, "memory", &err),
			 RAG_OK);
	rag_config_release(&cfg);
	clear_env();
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_parse_helpers),
		cmocka_unit_test(test_config_file_and_env),
		cmocka_unit_test(test_config_errors_name_line_and_key),
		cmocka_unit_test(test_config_names_stay_one_segment),
		cmocka_unit_test(test_config_secrets_never_shown),
		cmocka_unit_test(test_config_env_strict),
		cmocka_unit_test(test_config_choice_in_file),
		cmocka_unit_test(test_config_origin),
		cmocka_unit_test(test_config_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
