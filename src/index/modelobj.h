/*
 * modelobj — where a model lives in the object store, and the one way in
 * and out of it for every writer and reader.
 *
 * A model is the object set <model.prefix><name>/<version>/<file> (the files
 * of embed.h: a card plus weights, or a Hugging Face directory). A manifest
 * names a model by the key of one of its objects, its card; manifests older
 * than model kinds name "weights.bin" beside it. Either way the set is the
 * objects beside that key.
 *
 * Invariants:
 *  1. The card is written after every other file (embed.h, invariant 4), so
 *     a card names a complete set; a manifest is written after the card.
 *  2. Objects of a model are never overwritten with other bytes: the
 *     version in the path is the content's hash.
 *  3. Every request goes through the counted S3 client under the caller's
 *     stage, so loading a model shows in traces like any other object.
 */
#ifndef MODELOBJ_H
#define MODELOBJ_H

#include <stddef.h>

#include "embed.h"
#include "rag_err.h"
#include "s3.h"

/*
 * Open the model whose object key a manifest names. RAG_ENOTFOUND (no
 * such model), RAG_ECORRUPT (naming the object), or the S3 error; errors
 * name the key.
 */
rag_rc modelobj_open(s3_client *s3, const s3_op *op, const char *key, embedder **out,
		     rag_error *err);

/*
 * Open the model of the newest committed version of the index under root
 * (<index.prefix><index.name>/). RAG_ENOTFOUND when nothing is committed.
 */
rag_rc modelobj_open_latest(s3_client *s3, const s3_op *op, const char *root, embedder **out,
			    rag_error *err);

/*
 * Store e under prefix (model.prefix; "" or ending in '/' or not) as
 * <prefix><name>/<version>/, card last. key gets the card's key (what a
 * manifest names). RAG_ETOOBIG when the key does not fit in cap.
 */
rag_rc modelobj_publish(s3_client *s3, const s3_op *op, const char *prefix, const embedder *e,
			char *key, size_t cap, rag_error *err);

#endif
