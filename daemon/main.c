/*
 * main.c - arguments, configuration, building the parts, the loop, signals
 * and the ordered shutdown.  Owns struct app and the lifetime of every
 * module; no module reaches into another through it except the HTTP
 * handlers (api_app()).
 *
 * Shutdown (SIGTERM/SIGINT): stop intake (listening socket closed), stop
 * the scheduler, drain the dispatcher (bounded by [dispatch] drain_timeout),
 * stop the channels (each in-flight send reports), close the dispatcher,
 * the API, the scheduler and Redis, then the loop.  uv_loop_close() must
 * return 0: anything else is a leak and the exit status says so.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "app.h"
#include "campaign_run.h"
#include "callback.h"
#include "desk_notify.h"
#include "club/raffle.h"
#include "log.h"
#include "notify.h"
#include "occasions_run.h"
#include "privacy.h"
#include "store_privacy.h"
#include "survey_run.h"
#include "tz.h"
#include "util.h"

#define CLUBD_VERSION "0.1.0"

struct daemon {
	struct app app;
	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup;
	struct notify_watchdog_timer wd;
	struct api_route *routes;
	size_t nroutes;
	struct config **retired; /* replaced configs: drivers may still point into them */
	size_t nretired;
	int stopping;
	int exit_code;
	const char *log_format_cli; /* --log-format wins over [log] format, also on reload */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: clubd [-c FILE] [--check-config] [--log-format=kv|json]\n"
	           "       clubd --hash-token < token\n"
	           "       clubd [-c FILE] --rotate-key OLD NEW\n"
	           "       clubd --version\n"
	           "  -c, --config FILE   configuration file (default /etc/clubd/clubd.conf)\n"
	           "  --check-config      validate the configuration and channel settings, "
	           "then exit\n"
	           "  --hash-token        print the SHA-256 of a token read on stdin (for the "
	           "tokens file)\n"
	           "  --rotate-key OLD NEW  with clubd stopped, re-seal the personal data in "
	           "Redis\n"
	           "                      from key OLD to key NEW (file, env:NAME, cred:NAME "
	           "or none)\n");
}

static int hash_token(void)
{
	char line[4096];
	if (!fgets(line, sizeof line, stdin)) {
		fprintf(stderr, "clubd: no token on stdin\n");
		return 2;
	}
	size_t n = strcspn(line, "\r\n");
	if (n < 16) {
		fprintf(stderr, "clubd: a token must be at least 16 characters\n");
		return 2;
	}
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)line, n, md);
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	hex_encode(md, sizeof md, hex);
	printf("%s\n", hex);
	return 0;
}

/* Shutdown chain --------------------------------------------------------- */

static void on_signal_closed(uv_handle_t *h)
{
	(void)h;
}

static void finish_close(struct daemon *dm)
{
	uv_close((uv_handle_t *)&dm->sig_term, on_signal_closed);
	uv_close((uv_handle_t *)&dm->sig_int, on_signal_closed);
	uv_close((uv_handle_t *)&dm->sig_hup, on_signal_closed);
	notify_watchdog_timer_close(&dm->wd, NULL);
}

static void on_reader_closed(void *arg)
{
	finish_close(arg);
}

static void on_redis_closed(void *arg)
{
	struct daemon *dm = arg;
	redis_close(dm->app.reader, on_reader_closed, dm);
}

static void on_sched_closed(void *arg)
{
	struct daemon *dm = arg;
	redis_close(dm->app.redis, on_redis_closed, dm);
}

static void on_api_closed(void *arg)
{
	struct daemon *dm = arg;
	sched_close(dm->app.sched, on_sched_closed, dm);
}

static void on_desk_closed(void *arg)
{
	struct daemon *dm = arg;
	api_server_close(dm->app.api, on_api_closed, dm);
}

static void on_occ_closed(void *arg)
{
	struct daemon *dm = arg;
	desk_notify_close(dm->app.desk, on_desk_closed, dm);
}

static void on_imap_closed(void *arg)
{
	struct daemon *dm = arg;
	occ_runner_close(dm->app.occ, on_occ_closed, dm);
}

static void on_inpoll_closed(void *arg)
{
	struct daemon *dm = arg;
	imap_poll_close(dm->app.imap, on_imap_closed, dm);
}

static void on_poll_closed(void *arg)
{
	struct daemon *dm = arg;
	inbound_poll_close(dm->app.inpoll, on_inpoll_closed, dm);
}

static void on_camps_closed(void *arg)
{
	struct daemon *dm = arg;
	dlr_poll_close(dm->app.poll, on_poll_closed, dm);
}

static void on_dispatch_closed(void *arg)
{
	struct daemon *dm = arg;
	camp_runner_close(dm->app.camps, on_camps_closed, dm);
}

static void on_chans_stopped(void *arg)
{
	struct daemon *dm = arg;
	dispatch_close(dm->app.disp, on_dispatch_closed, dm);
}

static void on_drained(void *arg)
{
	struct daemon *dm = arg;
	log_info("main", "drained; stopping channels");
	chan_stop_all(dm->app.chans, dm->app.nchans, on_chans_stopped, dm);
}

static void shutdown_begin(struct daemon *dm, const char *why)
{
	if (dm->stopping) {
		log_notice("main", "already stopping signal=%s", why);
		return;
	}
	dm->stopping = 1;
	log_notice("main", "stopping signal=%s", why);
	notify_stopping();
	api_server_stop_intake(dm->app.api);
	sched_stop(dm->app.sched);
	dlr_poll_stop(dm->app.poll);
	inbound_poll_stop(dm->app.inpoll);
	imap_poll_stop(dm->app.imap);
	occ_runner_stop(dm->app.occ);
	desk_notify_stop(dm->app.desk);
	dispatch_drain(dm->app.disp, dm->app.cfg->dispatch_drain_timeout_ms, on_drained, dm);
}

/* Reload ----------------------------------------------------------------- */

static void reload(struct daemon *dm)
{
	struct app *app = &dm->app;
	struct config *next = NULL;
	struct cfg_error err = {""};
	notify_reloading();
	if (config_load(app->cfg->path, &next, &err) < 0 ||
	    config_reload_check(app->cfg, next, &err) < 0 ||
	    api_server_reload(app->api, next, &err) < 0) {
		log_err("main", "reload refused error=%s", log_q(err.msg));
		notify_ready("reload refused; running with the previous configuration");
		if (next)
			config_free(next);
		return;
	}
	log_setup(next->log_level,
	          strcmp(next->log_format, "json") == 0 ? LOG_FMT_JSON : LOG_FMT_KV);
	log_set_trace(next->log_trace);
	for (size_t i = 0; i < app->nchans; i++) {
		const struct cfg_channel *cc = config_channel(next, app->chans[i].cfg->name);
		if (cc)
			chan_reconfigure(&app->chans[i], cc);
	}
	sched_reconfigure(app->sched, next);
	dispatch_reconfigure(app->disp, next);
	dlr_poll_reconfigure(app->poll, next);
	inbound_poll_reconfigure(app->inpoll, next);
	imap_poll_reconfigure(app->imap, next);
	occ_runner_reconfigure(app->occ, next);
	desk_notify_reconfigure(app->desk, next);
	dm->retired = xrealloc(dm->retired, sizeof(*dm->retired) * (dm->nretired + 1));
	dm->retired[dm->nretired++] = app->cfg;
	app->cfg = next;
	log_notice("main", "configuration reloaded path=%s", log_q(next->path));
	notify_ready("running");
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *dm = s->data;
	if (signum == SIGHUP)
		reload(dm);
	else
		shutdown_begin(dm, signum == SIGTERM ? "TERM" : "INT");
}

static void on_redis_state(struct redis *r, int up, void *arg)
{
	struct daemon *dm = arg;
	log_notice("main", "redis conn=%s state=%s", redis_name(r), up ? "up" : "down");
	if (up && !dm->stopping)
		dispatch_redis_up(dm->app.disp);
	notify_status("redis %s", up ? "up" : "down");
}

/* Start ------------------------------------------------------------------ */

static int build_routes(struct daemon *dm)
{
	const struct {
		const struct api_route *r;
		size_t n;
	} tables[] = {{api_health_routes, api_health_nroutes},
	              {api_import_routes, api_import_nroutes},
	              {api_segment_routes, api_segment_nroutes},
	              {api_contact_routes, api_contact_nroutes},
	              {api_message_routes, api_message_nroutes},
	              {api_dlr_routes, api_dlr_nroutes},
	              {api_dlq_routes, api_dlq_nroutes},
	              {api_unsub_routes, api_unsub_nroutes},
	              {api_inbound_routes, api_inbound_nroutes},
	              {api_template_routes, api_template_nroutes},
	              {api_link_routes, api_link_nroutes},
	              {api_campaign_routes, api_campaign_nroutes},
	              {api_campaign_preview_routes, api_campaign_preview_nroutes},
	              {api_event_routes, api_event_nroutes},
	              {api_points_routes, api_points_nroutes},
	              {api_occasion_routes, api_occasion_nroutes},
	              {api_raffle_routes, api_raffle_nroutes},
	              {api_survey_routes, api_survey_nroutes},
	              {api_privacy_routes, api_privacy_nroutes},
	              {api_desk_routes, api_desk_nroutes}};
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
		n += tables[i].n;
	dm->routes = xcalloc(n, sizeof *dm->routes);
	for (size_t i = 0; i < ARRAY_SIZE(tables); i++)
		for (size_t k = 0; k < tables[i].n; k++)
			dm->routes[dm->nroutes++] = tables[i].r[k];
	dm->app.routes = dm->routes;
	dm->app.nroutes = dm->nroutes;
	return 0;
}

/* Takes ownership of cfg (a reload replaces it; every version is freed here). */
static int run(struct config *cfg, const char *log_format_cli)
{
	struct daemon *dm = xcalloc(1, sizeof *dm);
	dm->log_format_cli = log_format_cli;
	struct app *app = &dm->app;
	struct cfg_error err = {""};
	int rc = 1;
	char *password = NULL;

	if (uv_loop_init(&dm->loop) != 0) {
		log_err("main", "uv_loop_init failed");
		config_free(cfg);
		free(dm);
		return 1;
	}
	app->loop = &dm->loop;
	app->cfg = cfg;
	app->started_ms = now_ms();
	char host[64] = "host";
	gethostname(host, sizeof host - 1);
	unsigned char rnd[3];
	random_bytes(rnd, sizeof rnd);
	snprintf(app->consumer, sizeof app->consumer, "%.60s:%d:%02x%02x%02x", host, (int)getpid(),
	         rnd[0], rnd[1], rnd[2]);

	if (cfg->redis_password_file && *cfg->redis_password_file) {
		password = cfg_read_secret(cfg->redis_password_file, &err);
		if (!password) {
			log_err("main", "redis password error=%s", log_q(err.msg));
			goto out_loop;
		}
	}
	if (chan_configure_all(cfg, &app->chans, &app->nchans, &err) < 0) {
		log_err("main", "channel configuration error=%s", log_q(err.msg));
		goto out_loop;
	}

	struct redis_opts ro = {
	    .name = "main",
	    .host = cfg->redis_host,
	    .port = cfg->redis_port,
	    .socket = cfg->redis_socket && *cfg->redis_socket ? cfg->redis_socket : NULL,
	    .password = password,
	    .db = cfg->redis_db,
	    .command_timeout_ms = cfg->redis_command_timeout_ms,
	    .connect_timeout_ms = cfg->redis_connect_timeout_ms,
	    .reconnect_min_ms = cfg->redis_reconnect_min_ms,
	    .reconnect_max_ms = cfg->redis_reconnect_max_ms,
	};
	app->redis = redis_new(app->loop, &ro, on_redis_state, dm);
	ro.name = "reader";
	app->reader = redis_new(app->loop, &ro, on_redis_state, dm);
	secret_free(password);
	password = NULL;
	app->st = store_new(app->redis, cfg->redis_prefix, cfg->contacts_timeline_max);
	app->sched = sched_new(app->loop, app->st, cfg);
	app->disp = dispatch_new(app->loop, app->st, app->reader, app->chans, app->nchans, cfg,
	                         app->consumer);
	app->poll = dlr_poll_new(app->loop, app->st, app->chans, app->nchans, cfg);
	app->inpoll = inbound_poll_new(app->loop, app->st, app->chans, app->nchans, cfg, &err);
	if (!app->inpoll)
		log_err("main", "inbound configuration error=%s", log_q(err.msg));
	app->imap = imap_poll_new(app->loop, app->st, cfg, &err);
	if (!app->imap)
		log_err("main", "imap configuration error=%s", log_q(err.msg));
	app->camps = camp_runner_new(app->loop, app->st, cfg, app->consumer);
	app->occ = occ_runner_new(app->loop, app->st, cfg, app->consumer, app->chans, app->nchans);
	app->desk = desk_notify_new(app->loop, app->st, cfg);
	build_routes(dm);
	raffle_stage_install(app); /* the inbound router's raffle stage */
	survey_stage_install(app); /* the inbound router's survey stage */
	app->api = api_server_new(app->loop, cfg, dm->routes, dm->nroutes, app);

	/* Signals first: a SIGTERM that arrives while we start (the port file
	 * is already written) is handled by the loop, not fatal. */
	uv_signal_init(app->loop, &dm->sig_term);
	uv_signal_init(app->loop, &dm->sig_int);
	uv_signal_init(app->loop, &dm->sig_hup);
	dm->sig_term.data = dm->sig_int.data = dm->sig_hup.data = dm;
	uv_signal_start(&dm->sig_term, on_signal, SIGTERM);
	uv_signal_start(&dm->sig_int, on_signal, SIGINT);
	uv_signal_start(&dm->sig_hup, on_signal, SIGHUP);
	notify_watchdog_timer_init(&dm->wd, app->loop);

	if (chan_start_all(app->chans, app->nchans, app->loop) < 0) {
		log_err("main", "channels failed to start");
		goto out_started;
	}
	if (!app->inpoll || !app->imap)
		goto out_started;
	if (api_server_start(app->api, &err) < 0) {
		log_err("main", "api error=%s", log_q(err.msg));
		goto out_started;
	}

	notify_watchdog_timer_start(&dm->wd);

	sched_start(app->sched);
	dispatch_start(app->disp);
	dlr_poll_start(app->poll);
	inbound_poll_start(app->inpoll);
	imap_poll_start(app->imap);
	camp_runner_start(app->camps);
	occ_runner_start(app->occ);
	desk_notify_start(app->desk);
	log_notice("main", "started version=%s listen=%s port=%d consumer=%s channels=%zu",
	           CLUBD_VERSION, cfg->api_listen, api_server_port(app->api), app->consumer,
	           app->nchans);
	if (!*cfg->links_base_url)
		log_notice(
		    "links", "event=tracking_off reason=%s",
		    log_q("[links] base_url is empty: {{url|track}} shows URLs as they are"));
	notify_ready("running");

	uv_run(app->loop, UV_RUN_DEFAULT);
	rc = 0;
	goto out_loop_close;

out_started:
	/* Nothing ran yet: tear down in the same order as a shutdown. */
	dm->stopping = 1;
	dispatch_drain(app->disp, 0, on_drained, dm);
	uv_run(app->loop, UV_RUN_DEFAULT);
	rc = 1;
out_loop_close:;
	int lc = uv_loop_close(&dm->loop);
	if (lc != 0) {
		log_err("main", "loop not empty at exit error=%s (a handle leaked)",
		        uv_strerror(lc));
		uv_print_all_handles(&dm->loop, stderr);
		rc = 1;
	} else if (rc == 0) {
		log_notice("main", "stopped cleanly");
	} else {
		log_err("main", "start failed; stopped");
	}
	chan_free_all(app->chans, app->nchans);
	if (app->camps)
		camp_runner_free(app->camps);
	store_free(app->st);
	free(dm->routes);
	for (size_t i = 0; i < dm->nretired; i++)
		config_free(dm->retired[i]);
	free(dm->retired);
	config_free(app->cfg);
	tz_cleanup();
	callback_cleanup();
	free(dm);
	return rc;

out_loop:
	secret_free(password);
	chan_free_all(app->chans, app->nchans);
	uv_loop_close(&dm->loop);
	config_free(cfg);
	free(dm);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'C'},
	    {"hash-token", no_argument, NULL, 'H'},
	    {"rotate-key", no_argument, NULL, 'R'},
	    {"log-format", required_argument, NULL, 'L'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = "/etc/clubd/clubd.conf", *log_format = NULL;
	int check = 0, rotate = 0, c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = 1;
			break;
		case 'H':
			return hash_token();
		case 'R':
			rotate = 1;
			break;
		case 'L':
			if (strcmp(optarg, "kv") != 0 && strcmp(optarg, "json") != 0) {
				fprintf(stderr, "clubd: --log-format is kv or json\n");
				return 2;
			}
			log_format = optarg;
			break;
		case 'V':
			printf("clubd %s\n", CLUBD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - (rotate ? 2 : 0)) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	struct config *cfg = NULL;
	struct cfg_error err = {""};
	if (config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "clubd: %s\n", err.msg);
		return 1;
	}
	const char *fmt = log_format ? log_format : cfg->log_format;
	log_setup(cfg->log_level, strcmp(fmt, "json") == 0 ? LOG_FMT_JSON : LOG_FMT_KV);
	log_set_trace(cfg->log_trace);

	char why[512];
	if (callback_init(cfg->api_callback_secret_file, why, sizeof why) < 0) {
		fprintf(stderr, "clubd: %s: api.callback_secret_file: %s\n", path, why);
		config_free(cfg);
		return 1;
	}
	if (rotate) {
		int rc = store_privacy_rotate(cfg, argv[optind], argv[optind + 1], 500, stdout);
		callback_cleanup();
		config_free(cfg);
		return rc;
	}
	if (privacy_init(cfg->privacy_key_file, why, sizeof why) < 0) {
		fprintf(stderr, "clubd: %s: privacy.key_file: %s\n", path, why);
		callback_cleanup();
		config_free(cfg);
		return 1;
	}
	if (check) {
		struct chan *chans = NULL;
		size_t n = 0, ntokens = 0;
		int rc = chan_configure_all(cfg, &chans, &n, &err);
		if (rc == 0)
			rc = inbound_poll_check(cfg, chans, n, &err);
		if (rc == 0)
			rc = imap_poll_check(cfg, &err);
		chan_free_all(chans, n);
		/* What else only fails at start: the tokens file and the Redis password. */
		if (rc == 0)
			rc = api_tokens_check(cfg->api_tokens_file, &ntokens, &err);
		if (rc == 0 && cfg->redis_password_file && *cfg->redis_password_file) {
			char *pw = cfg_read_secret(cfg->redis_password_file, &err);
			if (!pw)
				rc = -1;
			secret_free(pw);
		}
		if (rc < 0) {
			fprintf(stderr, "clubd: %s\n", err.msg);
			privacy_cleanup();
			config_free(cfg);
			return 1;
		}
		printf("%s: configuration OK (%zu channels)\n", path, n);
		privacy_cleanup();
		config_free(cfg);
		return 0;
	}
	if (privacy_enabled())
		log_notice("privacy", "event=sealing key=%s", privacy_key_id(privacy_current()));
	int rc = run(cfg, log_format);
	privacy_cleanup();
	return rc;
}
