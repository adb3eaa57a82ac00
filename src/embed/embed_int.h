/*
 * embed_int.h — the LSA model's insides, shared by lsa*.c only.
 *
 * lsa_fit.c   vocabulary, TF-IDF and the randomized SVD
 * lsa.c       embedding texts, accessors
 * lsa_io.c    the weights object and the model card
 */
#ifndef EMBED_INT_H
#define EMBED_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lsa.h"
#include "text.h"

/* Longest term (a stem) stored in a model. */
#define EMBED_TERM_MAX (2 * TEXT_TOKEN_MAX)

/* -------------------------------------------------------------- model */

struct lsa_model {
	char name[EMBED_NAME_MAX];
	char fitted_on[EMBED_FITTED_ON_MAX];
	char version[17];
	int dims;
	uint64_t ndocs;
	int64_t created_at; /* fit time (seconds); 0 for a loaded model */
	size_t nterms;
	text_map vocab;  /* term -> term index */
	size_t *term_off; /* term i's bytes: vocab arena + term_off[i] */
	uint32_t *term_len;
	float *gw;        /* nterms global (log-entropy) weights */
	float *proj;      /* nterms x dims, row-major */
};

/* A model with no terms yet (name/fitted_on copied, truncated). */
lsa_model *lsa_alloc(const char *name, const char *fitted_on);
/*
 * Add term i (called with i = 0, 1, ... in order). RAG_ECONFLICT for a
 * duplicate, RAG_ENOMEM.
 */
rag_rc lsa_add_term(lsa_model *m, const char *term, size_t len);
/* Compute and store the version (serialises the weights once). */
rag_rc lsa_seal(lsa_model *m, rag_error *err);

/*
 * Internal knobs, fixed in lsa_fit(); exposed for experiments only (the
 * model card describes the defaults).
 */
typedef struct lsa_fit_tuning {
	double sv_power;   /* columns of P scaled by sigma^sv_power */
	int power_iters;   /* randomized SVD power iterations */
	int oversample;    /* extra columns of the test matrix */
	int drop_first;    /* drop the first singular vector(s) */
} lsa_fit_tuning;

#define LSA_FIT_TUNING_DEFAULT \
	((lsa_fit_tuning){.sv_power = 0.5, .power_iters = 3, \
			    .oversample = 24, .drop_first = 0})

rag_rc lsa_fit_tuned(const char *const *texts, const size_t *lens, size_t n,
		       const embed_fit_opts *opts, const lsa_fit_tuning *tune,
		       lsa_model **out, rag_error *err);

#endif
