// SPDX-License-Identifier: MIT
/* tether-invoke's command line (invoke.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invoke.h"
#include "tether_version.h"

#define MAX_COUNT 1000000
#define MAX_INTERVAL_MS 3600000
#define MAX_TIMEOUT_MS 3600000

static const char usage[] =
	"usage: tether-invoke --vip ADDR:PORT --function F [--key K]\n"
	"                     [--token HEX | --token-file FILE] [--strict] [--follow]\n"
	"                     [--count N] [--interval-ms M] [--timeout-ms T]\n"
	"                     [--payload TEXT] [--json]\n"
	"       tether-invoke --version\n"
	"Sends N requests (1 by default) for function F to the service ADDR:PORT\n"
	"([IPv6]:PORT) and prints, for each, the status, the container that served it\n"
	"(the slot of the token it got back), the latency and the payload.\n"
	"  --key K          routing key: requests with one key stay on one container\n"
	"  --token HEX      present this container token (32 hex digits)\n"
	"  --token-file F   present the token in F if it exists; leave the token of\n"
	"                   the last OK reply in F (removed on CONTAINER_GONE)\n"
	"  --strict         CONTAINER_GONE rather than another container\n"
	"  --follow         present the previous reply's token on the next request\n"
	"  --timeout-ms T   wait T ms for each reply (1000)\n"
	"  --json           one JSON object per line\n"
	"  --version        print the version (tether-invoke VERSION) and exit\n"
	"Numbers are decimal or 0x hex. Exit status: 0 when every request got OK,\n"
	"1 otherwise, 2 on a usage error.\n";

static int usage_error(const char *option, const char *value, const char *expected)
{
	fprintf(stderr, "tether-invoke: bad %s '%s': expected %s (tether-invoke --help)\n",
		option, value, expected);
	return -1;
}

/* Decimal, or hex after 0x: nothing else (no sign, no spaces, no octal). */
static int parse_number(const char *text, uint64_t *out)
{
	int base = 10;
	char *end;

	if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
		base = 16;
		text += 2;
	}
	if (!*text || !strchr("0123456789abcdefABCDEF", *text) ||
	    (base == 10 && (*text < '0' || *text > '9')))
		return -1;
	errno = 0;
	*out = strtoull(text, &end, base);
	return errno || *end ? -1 : 0;
}

static int parse_bounded(const char *option, const char *text, uint64_t min, uint64_t max,
			 uint64_t *out)
{
	char expected[64];

	if (parse_number(text, out) || *out < min || *out > max) {
		snprintf(expected, sizeof(expected), "a number from %llu to %llu",
			 (unsigned long long)min, (unsigned long long)max);
		return usage_error(option, text, expected);
	}
	return 0;
}

/* The rules between options, once all are read. */
static int check_combination(const struct invoke_options *o)
{
	struct sockaddr_storage addr;
	socklen_t len;

	if (!o->vip || !o->function_id) {
		fprintf(stderr, "tether-invoke: --vip and --function are required "
				"(tether-invoke --help)\n");
		return -1;
	}
	if (tether_endpoint_parse(o->vip, &addr, &len))
		return usage_error("--vip", o->vip, "ADDR:PORT or [IPv6]:PORT");
	if (o->has_token && o->token_file) {
		fprintf(stderr, "tether-invoke: --token and --token-file exclude each other\n");
		return -1;
	}
	if (o->payload && strlen(o->payload) > TETHER_PAYLOAD_MAX)
		return usage_error("--payload", "...", "at most 65459 bytes");
	return 0;
}

int invoke_options_parse(int argc, char **argv, struct invoke_options *o)
{
	enum { O_VIP = 1, O_FUNCTION, O_KEY, O_TOKEN, O_TOKEN_FILE, O_STRICT, O_COUNT,
	       O_INTERVAL, O_TIMEOUT, O_PAYLOAD, O_FOLLOW, O_JSON, O_HELP, O_VERSION };
	static const struct option options[] = {
		{ "vip", required_argument, 0, O_VIP },
		{ "function", required_argument, 0, O_FUNCTION },
		{ "key", required_argument, 0, O_KEY },
		{ "token", required_argument, 0, O_TOKEN },
		{ "token-file", required_argument, 0, O_TOKEN_FILE },
		{ "strict", no_argument, 0, O_STRICT },
		{ "count", required_argument, 0, O_COUNT },
		{ "interval-ms", required_argument, 0, O_INTERVAL },
		{ "timeout-ms", required_argument, 0, O_TIMEOUT },
		{ "payload", required_argument, 0, O_PAYLOAD },
		{ "follow", no_argument, 0, O_FOLLOW },
		{ "json", no_argument, 0, O_JSON },
		{ "help", no_argument, 0, O_HELP },
		{ "version", no_argument, 0, O_VERSION },
		{ 0, 0, 0, 0 },
	};
	int id, failed = 0;

	*o = (struct invoke_options){ .count = 1, .timeout_ms = 1000 };
	opterr = 0; /* our own message, below */
	while (!failed && (id = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (id) {
		case O_VIP: o->vip = optarg; break;
		case O_FUNCTION:
			failed = parse_bounded("--function", optarg, 1, UINT64_MAX,
					       &o->function_id);
			break;
		case O_KEY:
			failed = parse_bounded("--key", optarg, 0, UINT64_MAX, &o->key);
			o->has_key = true;
			break;
		case O_TOKEN:
			if (tether_token_from_hex(optarg, o->token))
				failed = usage_error("--token", optarg, "32 hex digits");
			o->has_token = true;
			break;
		case O_TOKEN_FILE: o->token_file = optarg; break;
		case O_STRICT: o->strict = true; break;
		case O_COUNT:
			failed = parse_bounded("--count", optarg, 1, MAX_COUNT, &o->count);
			break;
		case O_INTERVAL:
			failed = parse_bounded("--interval-ms", optarg, 0, MAX_INTERVAL_MS,
					       &o->interval_ms);
			break;
		case O_TIMEOUT:
			failed = parse_bounded("--timeout-ms", optarg, 1, MAX_TIMEOUT_MS,
					       &o->timeout_ms);
			break;
		case O_PAYLOAD: o->payload = optarg; break;
		case O_FOLLOW: o->follow = true; break;
		case O_JSON: o->json = true; break;
		case O_HELP: fputs(usage, stdout); return 1;
		case O_VERSION: printf("tether-invoke %s\n", TETHER_RELEASE_VERSION); return 1;
		default:
			fprintf(stderr, "tether-invoke: unknown option or missing value: '%s'\n",
				argv[optind - 1]);
			fputs(usage, stderr);
			return -1;
		}
	}
	if (failed)
		return -1;
	if (optind < argc) {
		fprintf(stderr, "tether-invoke: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return check_combination(o);
}
