/*
 * ragmap config show|example — what the program will use, secrets redacted.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char config_usage[] =
	"usage: ragmap config show [--config FILE]   effective settings (secrets redacted)\n"
	"       ragmap config example                 a commented file with every key\n";

int cmd_config(cli_env *env, int argc, char **argv)
{
	rag_config cfg;

	if (argc < 2 || cli_wants_help(argc, argv)) {
		fputs(config_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_USAGE : CLI_OK;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			env->config_path = argv[++i];
		} else {
			cli_error("config: unexpected argument \"%s\"", argv[i]);
			return CLI_USAGE;
		}
	}
	if (strcmp(argv[1], "example") == 0) {
		rag_config_example(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "show") != 0) {
		cli_error("config: unknown verb \"%s\" (show, example)", argv[1]);
		return CLI_USAGE;
	}
	if (!cli_load_config(env, &cfg))
		return CLI_USAGE;
	rag_config_show(&cfg, stdout);
	rag_config_release(&cfg);
	return CLI_OK;
}
