/*
 * commit.c — the commit protocol: see commit.h for the invariants.
 */
#include "commit.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rag_util.h"

void commit_token(char out[COMMIT_TOKEN_LEN])
{
	unsigned char r[8] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	bool got = fd >= 0 && read(fd, r, sizeof(r)) == (ssize_t)sizeof(r);

	if (fd >= 0)
		close(fd);
	if (!got) { /* no urandom: time and pid still differ between writers */
		uint64_t x = rag_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
		memcpy(r, &x, sizeof(r));
	}
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* --------------------------------------------------------------- reading */

rag_rc commit_read_hint(s3_client *s3, const s3_op *op, const char *root, int64_t *version,
			rag_error *err)
{
	char key[1200], mkey[1200];
	rag_buf b;
	rag_rc rc;

	*version = 0;
	if (mf_latest_key(root, key, sizeof(key)))
		return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
	rag_buf_init(&b, COMMIT_MANIFEST_MAX);
	rc = s3_get(s3, op, key, &b, NULL, err);
	if (rc == RAG_ENOTFOUND) {
		rag_error_clear(err);
		rc = RAG_OK;
	} else if (!rc && (rc = mf_latest_from_json(b.data, b.len, version, mkey, sizeof(mkey), err))) {
		/* a torn or foreign LATEST is only a bad hint: probe from 0 */
		rag_error_clear(err);
		*version = 0;
		rc = RAG_OK;
	}
	rag_buf_release(&b);
	return rc;
}

rag_rc commit_read_version(s3_client *s3, const s3_op *op, const char *root, int64_t version,
			   commit_head *head, manifest *m, rag_error *err)
{
	commit_head h = {.version = version};
	rag_buf b;
	rag_rc rc;

	if (mf_manifest_key(root, version, h.manifest_key, sizeof(h.manifest_key)))
		return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
	rag_buf_init(&b, COMMIT_MANIFEST_MAX);
	rc = s3_get(s3, op, h.manifest_key, &b, NULL, err);
	h.manifest_bytes = b.len;
	if (!rc && m) {
		rc = manifest_from_json(b.data, b.len, m, err);
		if (!rc && m->version != version) {
			rc = rag_error_set(err, RAG_ECORRUPT, "\"%s\" says version %lld",
					   h.manifest_key, (long long)m->version);
			manifest_release(m);
		}
		if (rc)
			rag_error_prefix(err, "manifest \"%s\"", h.manifest_key);
	}
	rag_buf_release(&b);
	if (!rc && head)
		*head = h;
	return rc;
}

static rag_rc exists(s3_client *s3, const s3_op *op, const char *root, int64_t version,
		     bool *found, rag_error *err)
{
	char key[1200];
	s3_object info = {0};
	rag_rc rc;

	if (mf_manifest_key(root, version, key, sizeof(key)))
		return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
	rc = s3_head(s3, op, key, &info, err);
	*found = rc == RAG_OK;
	if (rc == RAG_ENOTFOUND) {
		rag_error_clear(err);
		rc = RAG_OK;
	}
	s3_object_release(&info);
	return rc;
}

/* The highest version under manifests/ (0 if none): one LIST. */
static rag_rc highest_listed(s3_client *s3, const s3_op *op, const char *root, int64_t *version,
			     rag_error *err)
{
	char prefix[1200];
	s3_list l = {0};
	rag_rc rc;

	*version = 0;
	if ((size_t)snprintf(prefix, sizeof(prefix), "%smanifests/", root) >= sizeof(prefix))
		return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
	if ((rc = s3_list_objects(s3, op, prefix, "/", &l, err)))
		return rc;
	for (size_t i = 0; i < l.nobjects; i++) {
		const char *name = l.objects[i].key + strlen(prefix);
		char digits[16];
		int64_t v;
		size_t n = strspn(name, "0123456789");
		if (n == 0 || n >= sizeof(digits) || strcmp(name + n, ".json") != 0)
			continue;
		memcpy(digits, name, n);
		digits[n] = '\0';
		if (rag_parse_i64(digits, &v) && v > *version)
			*version = v;
	}
	s3_list_release(&l);
	return RAG_OK;
}

rag_rc commit_read_newest(s3_client *s3, const s3_op *op, const char *root, commit_head *head,
			  manifest *m, rag_error *err)
{
	int64_t v;
	bool found = true;
	rag_rc rc;

	if (m)
		memset(m, 0, sizeof(*m));
	if ((rc = commit_read_hint(s3, op, root, &v, err)))
		return rc;
	/* invariant 4: LATEST may lag; the first absent version ends the probe.
	 * A hint whose manifest is gone starts from the highest one listed. */
	if (v > 0 && ((rc = exists(s3, op, root, v, &found, err))))
		return rc;
	if (!found && (rc = highest_listed(s3, op, root, &v, err)))
		return rc;
	for (;;) {
		if ((rc = exists(s3, op, root, v + 1, &found, err)))
			return rc;
		if (!found)
			break;
		v++;
	}
	if (v == 0) {
		if (head)
			*head = (commit_head){0};
		return RAG_OK;
	}
	if ((rc = commit_read_version(s3, op, root, v, head, m, err)) == RAG_ENOTFOUND)
		/* GC took it between HEAD and GET: it cannot be the newest */
		rag_error_prefix(err, "version %lld vanished while read", (long long)v);
	return rc;
}

/* ------------------------------------------------------------ publishing */

/* After a 412: is the manifest at key ours (a retried PUT that landed)? */
static rag_rc manifest_is_ours(s3_client *s3, const s3_op *op, const char *root,
			       const manifest *m, bool *ours, rag_error *err)
{
	manifest got;
	rag_rc rc = commit_read_version(s3, op, root, m->version, NULL, &got, err);

	*ours = false;
	if (rc)
		return rc;
	*ours = m->writer[0] && strcmp(got.writer, m->writer) == 0;
	manifest_release(&got);
	return RAG_OK;
}

rag_rc commit_publish(s3_client *s3, const s3_op *op, const char *root, bool conditional,
		      const manifest *m, rag_error *err)
{
	char mkey[1200], lkey[1200];
	rag_buf body;
	bool ours = false, found = false;
	rag_rc rc;

	if (mf_manifest_key(root, m->version, mkey, sizeof(mkey)) ||
	    mf_latest_key(root, lkey, sizeof(lkey)))
		return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
	rag_buf_init(&body, COMMIT_MANIFEST_MAX);
	if ((rc = manifest_to_json(m, &body, err)))
		goto out;
	if (conditional) {
		rc = s3_put_if_absent(s3, op, mkey, body.data, body.len, "application/json", NULL, err);
	} else if (!(rc = exists(s3, op, root, m->version, &found, err))) {
		rc = found ? rag_error_set(err, RAG_ECONFLICT, "exists")
			   : s3_put(s3, op, mkey, body.data, body.len, "application/json", NULL, err);
	}
	if (rc == RAG_ECONFLICT) {
		rag_error e2 = {0};
		/* invariant 5: a retried PUT's first attempt may have won */
		if (manifest_is_ours(s3, op, root, m, &ours, &e2) == RAG_OK && ours) {
			rag_error_clear(err);
			rc = RAG_OK;
		} else {
			rc = rag_error_set(err, RAG_ECONFLICT,
					   "version %lld was committed by another writer",
					   (long long)m->version);
			goto out;
		}
	}
	if (rc)
		goto out;
	/* invariant 4: LATEST is a hint; a failure to move it loses nothing */
	rag_buf_reset(&body);
	if ((rc = mf_latest_to_json(m->version, mkey, &body)) == RAG_OK &&
	    s3_put(s3, op, lkey, body.data, body.len, "application/json", NULL, err) != RAG_OK)
		rag_error_clear(err);
	rc = RAG_OK;
out:
	rag_buf_release(&body);
	return rc;
}

/* ---------------------------------------------------------------- probe */

rag_rc commit_probe(s3_client *s3, const s3_op *op, const char *root, bool *conditional,
		    rag_error *err)
{
	char token[COMMIT_TOKEN_LEN], key[1200];
	static const char body[] = "ragmap conditional-write probe\n";
	rag_rc rc;

	*conditional = false;
	commit_token(token);
	if ((size_t)snprintf(key, sizeof(key), "%sprobe/%s", root, token) >= sizeof(key))
		return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
	rc = s3_put_if_absent(s3, op, key, body, sizeof(body) - 1, "text/plain", NULL, err);
	if (rc == RAG_ECONFLICT) {
		/* a retried first PUT that had landed: only a store that honours
		 * the header refuses our own fresh key */
		rag_error_clear(err);
		*conditional = true;
		rc = RAG_OK;
		goto out;
	}
	if (rc)
		return rc;
	rc = s3_put_if_absent(s3, op, key, body, sizeof(body) - 1, "text/plain", NULL, err);
	if (rc == RAG_ECONFLICT) {
		rag_error_clear(err);
		*conditional = true;
		rc = RAG_OK;
	}
out:
	s3_delete(s3, op, key, NULL); /* a leftover probe is garbage GC removes */
	return rc;
}

/* ------------------------------------------------------------ chunk ids */

int64_t commit_max_chunk_id(const manifest *m)
{
	int64_t max = 0;

	for (size_t i = 0; i < m->nsegments; i++)
		if (m->segments[i].count > 0 && m->segments[i].last_chunk > max)
			max = m->segments[i].last_chunk;
	return max;
}

int64_t commit_ids_high(const manifest *base, const manifest *m, int64_t ids_end)
{
	int64_t high = base->ids_high, own = commit_max_chunk_id(m), base_max = commit_max_chunk_id(base);

	if (own > high)
		high = own;
	if (base_max > high)
		high = base_max;
	if (ids_end - 1 > high)
		high = ids_end - 1;
	return high;
}

rag_rc commit_claim_ids(s3_client *s3, const s3_op *op, const char *root, int64_t floor_id,
			const char *token, int64_t *first, rag_error *err)
{
	manifest newest;
	int64_t block;
	char key[1200];
	rag_rc rc;

	if ((rc = commit_read_newest(s3, op, root, NULL, &newest, err)))
		return rc;
	if (newest.ids_high > floor_id)
		floor_id = newest.ids_high;
	if (commit_max_chunk_id(&newest) > floor_id)
		floor_id = commit_max_chunk_id(&newest);
	manifest_release(&newest);
	block = commit_id_block(floor_id) + 1;

	for (int tries = 0; tries < 1000; tries++, block++) {
		if ((size_t)snprintf(key, sizeof(key), "%sids/%012" PRId64, root, block) >= sizeof(key))
			return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
		rc = s3_put_if_absent(s3, op, key, token, strlen(token), "text/plain", NULL, err);
		if (rc == RAG_ECONFLICT) { /* another writer's block */
			rag_error_clear(err);
			continue;
		}
		if (!rc)
			*first = block * COMMIT_ID_BLOCK + 1;
		return rc;
	}
	return rag_error_set(err, RAG_ECONFLICT, "no free chunk id block above %lld in 1000 tries",
			     (long long)floor_id);
}

/* ----------------------------------------------------------------- lease */

static rag_rc lease_key(const char *root, char *key, size_t len, rag_error *err)
{
	if ((size_t)snprintf(key, len, "%swriter.lock", root) >= len)
		return rag_error_set(err, RAG_ECONFIG, "index root too long: \"%s\"", root);
	return RAG_OK;
}

/* RAG_EUNSUPPORTED, naming the holder, when another writer's lease at key
 * has not ended. */
static rag_rc lease_check(s3_client *s3, const s3_op *op, const char *root, const char *key,
			  const char *token, int64_t now, rag_error *err)
{
	rag_buf b;
	json_t *o;
	rag_rc rc;

	rag_buf_init(&b, 1u << 16);
	rc = s3_get(s3, op, key, &b, NULL, err);
	if (rc == RAG_ENOTFOUND) {
		rag_error_clear(err);
		rc = RAG_OK;
	} else if (!rc && (o = json_loadb(b.data, b.len, 0, NULL))) {
		const char *holder = json_string_value(json_object_get(o, "writer")),
			   *host = json_string_value(json_object_get(o, "host"));
		json_int_t until = json_integer_value(json_object_get(o, "until"));
		if (holder && strcmp(holder, token) != 0 && until > now)
			rc = rag_error_set(err, RAG_EUNSUPPORTED,
					   "index \"%s\" is being written by writer %s (%s, pid %lld) "
					   "until its lease ends in %lld s: this store does not honour "
					   "If-None-Match on PUT, so ragmap allows one writer at a time",
					   root, holder, host ? host : "?",
					   (long long)json_integer_value(json_object_get(o, "pid")),
					   (long long)(until - now));
		json_decref(o);
	}
	rag_buf_release(&b);
	return rc;
}

rag_rc commit_lease(s3_client *s3, const s3_op *op, const char *root, const char *token,
		    int64_t ttl_s, rag_error *err)
{
	char key[1200], host[256] = "";
	int64_t now = rag_wall_time();
	json_t *o;
	char *text = NULL;
	rag_rc rc;

	if ((rc = lease_key(root, key, sizeof(key), err)) ||
	    (rc = lease_check(s3, op, root, key, token, now, err)))
		return rc;
	gethostname(host, sizeof(host) - 1);
	o = json_pack("{s:s, s:s, s:I, s:I}", "writer", token, "host", host,
		      "pid", (json_int_t)getpid(), "until", (json_int_t)(now + ttl_s));
	if (!o || !(text = json_dumps(o, JSON_SORT_KEYS)))
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	else
		rc = s3_put(s3, op, key, text, strlen(text), "application/json", NULL, err);
	json_decref(o);
	free(text);
	/* two writers that both found no lease: the last PUT holds it, and the
	 * other learns so here (without conditional writes, a narrow window
	 * remains between this read and the commit) */
	return rc ? rc : lease_check(s3, op, root, key, token, now, err);
}

void commit_lease_release(s3_client *s3, const s3_op *op, const char *root, const char *token)
{
	char key[1200];
	rag_buf b;
	json_t *o;

	if (lease_key(root, key, sizeof(key), NULL))
		return;
	rag_buf_init(&b, 1u << 16);
	if (s3_get(s3, op, key, &b, NULL, NULL) == RAG_OK && (o = json_loadb(b.data, b.len, 0, NULL))) {
		const char *holder = json_string_value(json_object_get(o, "writer"));
		if (holder && strcmp(holder, token) == 0)
			s3_delete(s3, op, key, NULL);
		json_decref(o);
	}
	rag_buf_release(&b);
}

unsigned commit_backoff_ms(unsigned attempt)
{
	unsigned cap = 20u << (attempt < 6 ? attempt : 6); /* 40 ms .. 1.3 s */
	char t[COMMIT_TOKEN_LEN];
	unsigned long r;

	commit_token(t);
	r = strtoul(t + 8, NULL, 16);
	return (unsigned)(r % (cap + 1));
}
