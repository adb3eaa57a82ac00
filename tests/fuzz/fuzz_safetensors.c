/*
 * A BERT model's files (bert.h): the input is a model.safetensors for a
 * fixed tiny config.json. Whatever the bytes, loading either fails with a
 * message or gives a network whose embeddings are finite and unit length.
 */
#include <math.h>

#include "bert.h"
#include "fuzz_common.h"

/* hidden 8, 2 heads, 1 layer, intermediate 16, vocab 16, 8 positions */
static const char config[] =
	"{\"vocab_size\": 16, \"hidden_size\": 8, \"num_hidden_layers\": 1,"
	" \"num_attention_heads\": 2, \"intermediate_size\": 16,"
	" \"max_position_embeddings\": 8, \"type_vocab_size\": 2,"
	" \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int32_t ids[] = {2, 5, 7, 9, 3};
	const int32_t *seqs[] = {ids, ids};
	const size_t lens[] = {5, 2};
	bert_net *net = NULL;
	rag_error err = {0};
	float out[2 * 8];

	if (bert_net_load(config, sizeof(config) - 1, (const char *)data, size, &net, &err) != RAG_OK) {
		FUZZ_CHECK(err.msg[0] && !net);
		return 0;
	}
	FUZZ_CHECK(bert_net_config(net)->hidden == 8);
	if (bert_net_encode(net, seqs, lens, 2, size & 1, out, &err) == RAG_OK) {
		for (int r = 0; r < 2; r++) {
			double n2 = 0;
			for (int i = 0; i < 8; i++) {
				FUZZ_CHECK(isfinite(out[r * 8 + i]));
				n2 += (double)out[r * 8 + i] * out[r * 8 + i];
			}
			/* unit length, or zero when the weights give nothing to normalise */
			FUZZ_CHECK(n2 == 0 || fabs(n2 - 1) < 1e-3);
		}
	}
	bert_net_free(net);
	return 0;
}
