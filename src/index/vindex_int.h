/*
 * vindex_int.h — declarations internal to the index module: the one seam
 * into FAISS's C++ objects that its C API does not offer (vindex_lists.cpp).
 */
#ifndef VINDEX_INT_H
#define VINDEX_INT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Borrow list number list of an IndexIVFFlat (ivf: the FaissIndexIVF of
 * FAISS's C API) in place, without copying: *n rows, *vecs the rows' n x
 * dims floats (FAISS's codes of an IndexIVFFlat are the raw vectors,
 * host order), *iids their FAISS ids (the internal ids under the
 * IndexIDMap). Borrowed; valid while the index lives and is not modified.
 * Returns 0, or -1 when ivf is not an IndexIVFFlat over ArrayInvertedLists
 * (the only kind vindex builds or loads: vindex.c), list is out of range,
 * or its code size is not dims floats. Never throws; thread-safe (reads
 * only).
 */
int vindex_ivf_list(const void *ivf, size_t list, int dims, size_t *n, const float **vecs,
		    const int64_t **iids);

#ifdef __cplusplus
}
#endif

#endif
