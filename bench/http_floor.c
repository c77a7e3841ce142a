/*
 * http_floor.c - the floor under clubd's inbound webhook figures: the same
 * HTTP library (libmicrohttpd, one epoll thread, keep-alive) answering
 * every request with a fixed 200 JSON answer and doing nothing else.  Run
 * with the inbound load generator against it, it shows what one request
 * costs this machine before any parsing, signature check or store work
 * (docs/benchmarks.md, "Inbound webhooks").
 *
 * Owns: its listening socket on 127.0.0.1 only.  Reads request bodies and
 * drops them.  Bounded: exits after --seconds (default 120) or on SIGTERM /
 * SIGINT.
 *
 * Usage: http_floor --port N [--seconds S]
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *data,
                                 size_t *size, void **ctx)
{
	static int seen;
	static const char answer[] = "{\"action\":\"reply\",\"contact_id\":null,"
	                             "\"duplicate\":false}";
	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)data;
	if (!*ctx) {
		*ctx = &seen; /* headers: wait for the body */
		return MHD_YES;
	}
	if (*size) {
		*size = 0; /* a body chunk, dropped */
		return MHD_YES;
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    sizeof answer - 1, (void *)(uintptr_t)answer, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

int main(int argc, char **argv)
{
	int64_t port = 0, seconds = 120;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0 && parse_i64(argv[i + 1], 1, 65535, &port) == 0)
			continue;
		if (strcmp(argv[i], "--seconds") == 0 &&
		    parse_i64(argv[i + 1], 1, 3600, &seconds) == 0)
			continue;
		port = 0;
		break;
	}
	if (!port || argc % 2 == 0) {
		fprintf(stderr, "usage: http_floor --port N [--seconds S]\n");
		return 2;
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_EPOLL_INTERNAL_THREAD, (uint16_t)port, NULL, NULL, on_access, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 1024u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024), MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "http_floor: cannot listen on 127.0.0.1:%lld\n", (long long)port);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (int64_t t = 0; !stop && t < seconds * 10; t++)
		usleep(100 * 1000);
	MHD_stop_daemon(d);
	return 0;
}
