#include "s3_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rag_util.h"

/* Untrusted input: no external entity or DTD is loaded, nothing from the
 * network, quiet. Entities the document defines itself are expanded when
 * text is read, one level deep (libxml2 refuses an entity bomb's nesting). */
#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS)

static xmlDocPtr parse_doc(const char *body, size_t len)
{
	if (!body || len == 0 || len > 64u * 1024 * 1024)
		return NULL;
	return xmlReadMemory(body, (int)len, "s3.xml", NULL, XML_OPTS);
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* The text of n's child element called name, copied into buf. */
static bool child_text(const xmlNode *n, const char *name, char *buf, size_t len)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (is(c, name)) {
			xmlChar *t = xmlNodeGetContent(c);
			rag_strlcpy(buf, t ? (const char *)t : "", len);
			xmlFree(t);
			return true;
		}
	}
	if (len)
		buf[0] = '\0';
	return false;
}

static char *child_dup(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (is(c, name)) {
			xmlChar *t = xmlNodeGetContent(c);
			char *s = rag_strdup(t ? (const char *)t : "");
			xmlFree(t);
			return s;
		}
	}
	return NULL;
}

static void strip_quotes(char *etag)
{
	size_t n = strlen(etag);

	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
		memmove(etag, etag + 1, n - 2);
		etag[n - 2] = '\0';
	}
}

/*
 * Undo encoding-type=url in place: %XX is a byte and '+' a space (S3
 * encodes a literal '+' as %2B). A NUL or a bad escape is not a key.
 */
static bool url_decode(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		if (*r == '+') {
			*w++ = ' ';
		} else if (*r == '%') {
			unsigned v;
			if (!isxdigit((unsigned char)r[1]) || !isxdigit((unsigned char)r[2]) ||
			    sscanf(r + 1, "%2x", &v) != 1 || v == 0)
				return false;
			*w++ = (char)v;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return true;
}

/* A key or prefix of the listing, decoded when the answer is URL-encoded. */
static char *listed_name(const s3_list_page *page, const xmlNode *n, const char *name)
{
	char *v = child_dup(n, name);

	if (v && page->url_encoded && !url_decode(v)) {
		free(v);
		return NULL;
	}
	return v;
}

static rag_rc add_object(s3_list_page *page, const xmlNode *n, rag_error *err)
{
	s3_object o = {0};
	char num[32], when[64];
	int64_t size;

	if (!(o.key = listed_name(page, n, "Key")))
		return rag_error_set(err, RAG_EPARSE, "list: <Contents> without a valid <Key>");
	child_text(n, "ETag", o.etag, sizeof(o.etag));
	strip_quotes(o.etag);
	if (!child_text(n, "Size", num, sizeof(num)) || !rag_parse_i64(num, &size) || size < 0) {
		rag_error_set(err, RAG_EPARSE, "list: bad <Size> for key \"%s\"", o.key);
		free(o.key);
		return RAG_EPARSE;
	}
	o.size = (uint64_t)size;
	if (child_text(n, "LastModified", when, sizeof(when)))
		o.last_modified = s3_parse_time(when);
	s3_object *p = rag_grow(page->objects, &page->capobjects, page->nobjects + 1, sizeof(*p));
	if (!p) {
		free(o.key);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	page->objects = p;
	page->objects[page->nobjects++] = o;
	return RAG_OK;
}

static rag_rc add_prefix(s3_list_page *page, const xmlNode *n, rag_error *err)
{
	char *p = listed_name(page, n, "Prefix");

	if (!p)
		return rag_error_set(err, RAG_EPARSE, "list: <CommonPrefixes> without a valid <Prefix>");
	char **a = rag_grow(page->prefixes, &page->capprefixes, page->nprefixes + 1, sizeof(*a));
	if (!a) {
		free(p);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	page->prefixes = a;
	page->prefixes[page->nprefixes++] = p;
	return RAG_OK;
}

rag_rc s3_xml_parse_list(const char *body, size_t len, s3_list_page *page,
			 rag_error *err)
{
	xmlDocPtr doc = parse_doc(body, len);
	xmlNode *root;
	char flag[16];
	rag_rc rc = RAG_OK;

	if (!doc)
		return rag_error_set(err, RAG_EPARSE, "list: response is not XML");
	root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "ListBucketResult")) {
		rc = rag_error_set(err, RAG_EPARSE, "list: expected <ListBucketResult>");
		goto out;
	}
	/* keys come URL-encoded when the server honoured encoding-type=url */
	page->url_encoded = child_text(root, "EncodingType", flag, sizeof(flag)) &&
			    strcmp(flag, "url") == 0;
	for (xmlNode *c = root->children; c && !rc; c = c->next) {
		if (is(c, "Contents"))
			rc = add_object(page, c, err);
		else if (is(c, "CommonPrefixes"))
			rc = add_prefix(page, c, err);
	}
	if (rc)
		goto out;
	child_text(root, "IsTruncated", flag, sizeof(flag));
	page->truncated = strcmp(flag, "true") == 0;
	free(page->next_token);
	page->next_token = page->truncated ? child_dup(root, "NextContinuationToken") : NULL;
	if (page->truncated && (!page->next_token || !*page->next_token))
		rc = rag_error_set(err, RAG_EPARSE,
				   "list: truncated answer without <NextContinuationToken>");
out:
	xmlFreeDoc(doc);
	return rc;
}

bool s3_xml_parse_error(const char *body, size_t len, s3_xml_error *out)
{
	xmlDocPtr doc = parse_doc(body, len);
	xmlNode *root;
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!doc)
		return false;
	root = xmlDocGetRootElement(doc);
	if (root && is(root, "Error")) {
		child_text(root, "Code", out->code, sizeof(out->code));
		child_text(root, "Message", out->message, sizeof(out->message));
		child_text(root, "Key", out->key, sizeof(out->key));
		child_text(root, "BucketName", out->bucket, sizeof(out->bucket));
		ok = out->code[0] != '\0';
	}
	xmlFreeDoc(doc);
	return ok;
}

rag_rc s3_xml_parse_upload_id(const char *body, size_t len, char **upload_id,
			      rag_error *err)
{
	xmlDocPtr doc = parse_doc(body, len);
	xmlNode *root;

	*upload_id = NULL;
	if (!doc)
		return rag_error_set(err, RAG_EPARSE, "multipart: response is not XML");
	root = xmlDocGetRootElement(doc);
	if (root && is(root, "InitiateMultipartUploadResult"))
		*upload_id = child_dup(root, "UploadId");
	xmlFreeDoc(doc);
	if (!*upload_id || !**upload_id) {
		free(*upload_id);
		*upload_id = NULL;
		return rag_error_set(err, RAG_EPARSE, "multipart: no <UploadId> in answer");
	}
	return RAG_OK;
}

rag_rc s3_xml_parse_delete_result(const char *body, size_t len, size_t *nerrors,
				  s3_xml_error *first, rag_error *err)
{
	xmlDocPtr doc = parse_doc(body, len);
	xmlNode *root;

	*nerrors = 0;
	if (!doc)
		return rag_error_set(err, RAG_EPARSE, "delete: response is not XML");
	root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "DeleteResult")) {
		xmlFreeDoc(doc);
		return rag_error_set(err, RAG_EPARSE, "delete: expected <DeleteResult>");
	}
	for (xmlNode *c = root->children; c; c = c->next) {
		if (!is(c, "Error"))
			continue;
		if (*nerrors == 0 && first) {
			memset(first, 0, sizeof(*first));
			child_text(c, "Key", first->key, sizeof(first->key));
			child_text(c, "Code", first->code, sizeof(first->code));
			child_text(c, "Message", first->message, sizeof(first->message));
		}
		(*nerrors)++;
	}
	xmlFreeDoc(doc);
	return RAG_OK;
}

/* ---- bucket notifications and topics ---- */

/* Whether n has an element child (an empty <S3Tags/> filters nothing). */
static bool has_element(const xmlNode *n)
{
	for (const xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return true;
	return false;
}

/* The key filter: one prefix rule is what a rule here can hold. */
static void parse_key_filter(const xmlNode *s3key, s3_notification *r, char **prefix)
{
	for (const xmlNode *f = s3key->children; f; f = f->next) {
		char name[32];
		if (f->type != XML_ELEMENT_NODE)
			continue;
		if (!is(f, "FilterRule") || !child_text(f, "Name", name, sizeof(name)) ||
		    strcasecmp(name, "prefix") != 0 || *prefix) {
			r->other = true;
			continue;
		}
		*prefix = child_dup(f, "Value");
	}
}

static void parse_rule_body(const xmlNode *n, s3_notification *r, char **prefix)
{
	for (const xmlNode *c = n->children; c; c = c->next) {
		char ev[64];
		if (c->type != XML_ELEMENT_NODE || is(c, "Id") || is(c, "Topic"))
			continue;
		if (is(c, "Event")) {
			xmlChar *t = xmlNodeGetContent(c);
			rag_strlcpy(ev, t ? (const char *)t : "", sizeof(ev));
			xmlFree(t);
			if (strcmp(ev, "s3:ObjectCreated:*") == 0)
				r->events |= S3_EVENT_CREATED;
			else if (strcmp(ev, "s3:ObjectRemoved:*") == 0)
				r->events |= S3_EVENT_REMOVED;
			else
				r->other = true;
		} else if (is(c, "Filter")) {
			for (const xmlNode *f = c->children; f; f = f->next) {
				if (f->type != XML_ELEMENT_NODE)
					continue;
				if (is(f, "S3Key"))
					parse_key_filter(f, r, prefix);
				else if (has_element(f))
					r->other = true; /* S3Metadata, S3Tags with rules */
			}
		} else {
			r->other = true;
		}
	}
}

static rag_rc add_rule(s3_notification_list *l, size_t *cap, const xmlNode *n, rag_error *err)
{
	s3_notification r = {0};
	char *id = child_dup(n, "Id"), *arn = child_dup(n, "Topic"), *prefix = NULL;
	s3_notification *p;

	/* queues and functions (AWS) are rules too, of a kind kept as is */
	r.other = !is(n, "TopicConfiguration");
	parse_rule_body(n, &r, &prefix);
	if (!id || !*id) {
		free(id);
		free(arn);
		free(prefix);
		return rag_error_set(err, RAG_EPARSE, "notification configuration: a rule without <Id>");
	}
	if (!(p = rag_grow(l->rules, cap, l->n + 1, sizeof(*p)))) {
		free(id);
		free(arn);
		free(prefix);
		return rag_error_set(err, RAG_ENOMEM, "out of memory");
	}
	r.id = id;
	r.topic_arn = arn;
	r.prefix = prefix;
	l->rules = p;
	l->rules[l->n++] = r;
	return RAG_OK;
}

rag_rc s3_xml_parse_notifications(const char *body, size_t len, s3_notification_list *out,
				  rag_error *err)
{
	xmlDocPtr doc = parse_doc(body, len);
	xmlNode *root;
	size_t cap = 0;
	rag_rc rc = RAG_OK;

	memset(out, 0, sizeof(*out));
	if (!doc)
		return rag_error_set(err, RAG_EPARSE, "notification configuration: not XML");
	root = xmlDocGetRootElement(doc);
	if (!root || !is(root, "NotificationConfiguration")) {
		xmlFreeDoc(doc);
		return rag_error_set(err, RAG_EPARSE,
				     "notification configuration: expected <NotificationConfiguration>");
	}
	for (xmlNode *c = root->children; c && !rc; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !is(c, "EventBridgeConfiguration"))
			rc = add_rule(out, &cap, c, err);
	xmlFreeDoc(doc);
	if (rc)
		s3_notification_list_release(out);
	return rc;
}

void s3_notification_list_release(s3_notification_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		/* the list's own copies (s3_notification's fields are const for callers) */
		free((char *)l->rules[i].id);
		free((char *)l->rules[i].topic_arn);
		free((char *)l->rules[i].prefix);
	}
	free(l->rules);
	memset(l, 0, sizeof(*l));
}

/* Depth-first: the first <TopicArn> whose last ':' field is name (any when NULL). */
static const xmlNode *find_arn(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n; c; c = c->next) {
		const xmlNode *hit;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (is(c, "TopicArn")) {
			xmlChar *t = xmlNodeGetContent(c);
			const char *s = t ? (const char *)t : "", *last = strrchr(s, ':');
			bool match = *s && (!name || (last && strcmp(last + 1, name) == 0));
			xmlFree(t);
			if (match)
				return c;
		}
		if ((hit = find_arn(c->children, name)))
			return hit;
	}
	return NULL;
}

rag_rc s3_xml_topic_arn(const char *body, size_t len, const char *name, char *arn,
			size_t arn_len, rag_error *err)
{
	xmlDocPtr doc = parse_doc(body, len);
	const xmlNode *hit;
	xmlChar *t;
	rag_rc rc = RAG_OK;

	if (arn_len)
		arn[0] = '\0';
	if (!doc)
		return rag_error_set(err, RAG_EPARSE, "topic: answer is not XML");
	/* "not in the list" only from a list: an error page or another answer
	 * must not read as "no such topic" (a delete would call it done) */
	if (name && !is(xmlDocGetRootElement(doc), "ListTopicsResponse")) {
		rc = rag_error_set(err, RAG_EPARSE, "topic: answer is <%s>, not <ListTopicsResponse>",
				   (const char *)xmlDocGetRootElement(doc)->name);
		xmlFreeDoc(doc);
		return rc;
	}
	hit = find_arn(xmlDocGetRootElement(doc), name);
	if (!hit) {
		xmlFreeDoc(doc);
		return name ? rag_error_set(err, RAG_ENOTFOUND, "no topic \"%s\"", name)
			    : rag_error_set(err, RAG_EPARSE, "topic: no <TopicArn> in answer");
	}
	t = xmlNodeGetContent(hit);
	if (!t)
		rc = rag_error_set(err, RAG_ENOMEM, "out of memory");
	else if (strlen((const char *)t) >= arn_len)
		rc = rag_error_set(err, RAG_ETOOBIG, "topic ARN longer than %zu bytes", arn_len);
	else
		rag_strlcpy(arn, (const char *)t, arn_len);
	xmlFree(t);
	xmlFreeDoc(doc);
	return rc;
}

int64_t s3_parse_time(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%a, %d %b %Y %H:%M:%S", &tm);
	}
	if (!end)
		return 0;
	return (int64_t)timegm(&tm);
}

void s3_object_release(s3_object *o)
{
	free(o->key);
	o->key = NULL;
}

void s3_list_page_release(s3_list_page *page)
{
	for (size_t i = 0; i < page->nobjects; i++)
		s3_object_release(&page->objects[i]);
	for (size_t i = 0; i < page->nprefixes; i++)
		free(page->prefixes[i]);
	free(page->objects);
	free(page->prefixes);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}
