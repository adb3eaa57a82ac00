/*
 * s3_xml — parse the XML bodies S3 answers with (libxml2).
 *
 * Pure functions over a byte buffer: no I/O, so they are unit-tested and
 * fuzzed directly. Entity expansion and network access are disabled.
 */
#ifndef S3_XML_H
#define S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rag_err.h"

typedef struct s3_object {
	char *key;            /* owned */
	char etag[80];        /* without the quotes */
	uint64_t size;
	int64_t last_modified; /* seconds since the epoch, 0 if unknown */
} s3_object;

/* One page of a ListObjectsV2 answer, appended to the arrays given. */
typedef struct s3_list_page {
	s3_object *objects;   /* owned, grown with realloc */
	size_t nobjects, capobjects;
	char **prefixes;      /* CommonPrefixes; owned */
	size_t nprefixes, capprefixes;
	bool truncated;
	bool url_encoded;     /* this answer's keys were URL-encoded (decoded here) */
	char *next_token;     /* owned; NULL when not truncated */
} s3_list_page;

/* The fields of an <Error> body. Empty strings when absent. */
typedef struct s3_xml_error {
	char code[64];
	char message[256];
	char key[256];
	char bucket[128];
} s3_xml_error;

/*
 * Parse a ListBucketResult body, appending to page (which the caller
 * zero-initialises once). RAG_EPARSE with a message on malformed input.
 */
rag_rc s3_xml_parse_list(const char *body, size_t len, s3_list_page *page,
			 rag_error *err);

/* Parse an <Error> body. False if it is not one. */
bool s3_xml_parse_error(const char *body, size_t len, s3_xml_error *out);

/* The UploadId of an InitiateMultipartUploadResult; caller frees. */
rag_rc s3_xml_parse_upload_id(const char *body, size_t len, char **upload_id,
			      rag_error *err);

/*
 * Count <Error> elements in a DeleteResult; the first one's key and code go
 * to first (when not NULL).
 */
rag_rc s3_xml_parse_delete_result(const char *body, size_t len, size_t *nerrors,
				  s3_xml_error *first, rag_error *err);

/* Event families of a notification rule (bit flags). */
#define S3_EVENT_CREATED 0x1u /* s3:ObjectCreated:* */
#define S3_EVENT_REMOVED 0x2u /* s3:ObjectRemoved:* */

/*
 * One rule of a bucket's notification configuration: a TopicConfiguration
 * that sends events of keys under prefix to a topic. A caller that builds
 * one for s3_bucket_notification_put() keeps its strings; in a list parsed
 * here they belong to the list.
 */
typedef struct s3_notification {
	const char *id;
	const char *topic_arn;
	const char *prefix;  /* NULL or "": every key */
	unsigned events;     /* S3_EVENT_* */
	bool other;          /* parsed: the rule holds what this struct cannot
	                      * (other event names, suffix, metadata or tag
	                      * filters, a queue or function target), so
	                      * writing it back would change it */
} s3_notification;

typedef struct s3_notification_list {
	s3_notification *rules; /* owned, strings included */
	size_t n;
} s3_notification_list;

/*
 * Parse a NotificationConfiguration (GET ?notification) into out (which
 * is overwritten). RAG_EPARSE on malformed input or a rule without an Id.
 */
rag_rc s3_xml_parse_notifications(const char *body, size_t len, s3_notification_list *out,
				  rag_error *err);
void s3_notification_list_release(s3_notification_list *l);

/*
 * The topic ARN in a CreateTopic answer (name NULL: the first TopicArn in
 * the body), or in a ListTopics answer the one of the topic called name
 * (the ARN's last ':' field). RAG_ENOTFOUND when the list has no such
 * topic, RAG_EPARSE when the body is no ListTopicsResponse, RAG_ETOOBIG
 * when the ARN does not fit in arn_len.
 */
rag_rc s3_xml_topic_arn(const char *body, size_t len, const char *name, char *arn,
			size_t arn_len, rag_error *err);

/* Parse an ISO-8601 ("2024-01-02T03:04:05.000Z") or RFC 1123 date. 0 if bad. */
int64_t s3_parse_time(const char *s);

void s3_object_release(s3_object *o);
void s3_list_page_release(s3_list_page *page);

#endif
