/*
 * vindex_lists.cpp — the in-RAM inverted lists of an IndexIVFFlat, read in
 * place. FAISS's C API gives a list's size and a copy of its ids, never its
 * codes; the OpenBLAS scan of vindex.c (VINDEX_SCAN_BLAS) needs the rows
 * where they are, so this file reaches them through FAISS's C++ classes
 * (the headers of the same Debian libfaiss-dev the library comes from).
 * Only ArrayInvertedLists is accepted: its get_codes()/get_ids() return
 * pointers into the lists' own storage and its release_*() do nothing, so
 * the pointers stay valid for the index's lifetime.
 */
#include "vindex_int.h"

#include <faiss/IndexIVFFlat.h>
#include <faiss/invlists/InvertedLists.h>

extern "C" int vindex_ivf_list(const void *ivf, size_t list, int dims, size_t *n,
			       const float **vecs, const int64_t **iids)
{
	/* the C API's FaissIndexIVF is the faiss::IndexIVF itself */
	const faiss::IndexIVF *base = static_cast<const faiss::IndexIVF *>(ivf);
	const faiss::IndexIVFFlat *flat = dynamic_cast<const faiss::IndexIVFFlat *>(base);
	const faiss::ArrayInvertedLists *al;

	if (!flat || !flat->invlists || dims < 1 ||
	    flat->code_size != static_cast<size_t>(dims) * sizeof(float))
		return -1;
	al = dynamic_cast<const faiss::ArrayInvertedLists *>(flat->invlists);
	if (!al || list >= al->nlist || al->code_size != flat->code_size)
		return -1;
	/* the vectors, not the virtual get_codes(): no call can throw here */
	*n = al->ids[list].size();
	if (al->codes[list].size() != *n * al->code_size)
		return -1;
	*vecs = reinterpret_cast<const float *>(al->codes[list].data());
	*iids = al->ids[list].data();
	return 0;
}
