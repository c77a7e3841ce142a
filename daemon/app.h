/*
 * app.h - the running daemon's parts, as the HTTP handlers see them.  Only
 * main.c builds it; handlers reach it through api_app(rq).  It is not a
 * global: modules below the handlers get exactly what they need from main.
 */
#ifndef CLUBD_APP_H
#define CLUBD_APP_H

#include <uv.h>

#include "api.h"
#include "channel.h"
#include "config.h"
#include "dispatch.h"
#include "dlr_poll.h"
#include "imap_poll.h"
#include "inbound_poll.h"
#include "redis.h"
#include "sched.h"
#include "store.h"

struct app {
	uv_loop_t *loop;
	struct config *cfg;
	struct redis *redis, *reader;
	struct store *st;
	struct chan *chans;
	size_t nchans;
	struct sched *sched;
	struct dispatch *disp;
	struct dlr_poll *poll;
	struct inbound_poll *inpoll; /* inbound transports: secrets and pollers */
	struct imap_poll *imap;      /* email replies over IMAP (imap_poll.c) */
	struct camp_runner *camps;
	struct occ_runner *occ; /* occasions: the evaluator (occasions_run.c) */
	/* the complaints desk: tickets from replies, notifications (desk_notify.c) */
	struct desk_notify *desk;
	struct api_server *api;
	const struct api_route *routes; /* the served table, for per-route metrics */
	size_t nroutes;
	char consumer[128];
	int64_t started_ms;
};

/* Route tables, one per resource file. */
extern const struct api_route api_health_routes[];
extern const size_t api_health_nroutes;
extern const struct api_route api_contact_routes[];
extern const size_t api_contact_nroutes;
extern const struct api_route api_message_routes[];
extern const size_t api_message_nroutes;
extern const struct api_route api_dlr_routes[];
extern const size_t api_dlr_nroutes;
extern const struct api_route api_dlq_routes[];
extern const size_t api_dlq_nroutes;
extern const struct api_route api_unsub_routes[];
extern const size_t api_unsub_nroutes;
extern const struct api_route api_inbound_routes[];
extern const size_t api_inbound_nroutes;
extern const struct api_route api_segment_routes[];
extern const size_t api_segment_nroutes;
extern const struct api_route api_import_routes[]; /* before the contact routes */
extern const size_t api_import_nroutes;
extern const struct api_route api_event_routes[];
extern const size_t api_event_nroutes;
extern const struct api_route api_points_routes[];
extern const size_t api_points_nroutes;
extern const struct api_route api_template_routes[];
extern const size_t api_template_nroutes;
extern const struct api_route api_link_routes[];
extern const size_t api_link_nroutes;

extern const struct api_route api_campaign_routes[];
extern const size_t api_campaign_nroutes;
extern const struct api_route api_campaign_preview_routes[];
extern const size_t api_campaign_preview_nroutes;
extern const struct api_route api_occasion_routes[];
extern const size_t api_occasion_nroutes;
extern const struct api_route api_raffle_routes[];
extern const size_t api_raffle_nroutes;
extern const struct api_route api_survey_routes[];
extern const size_t api_survey_nroutes;
extern const struct api_route api_privacy_routes[];
extern const size_t api_privacy_nroutes;
extern const struct api_route api_desk_routes[];
extern const size_t api_desk_nroutes;

/* Shared by handlers: answer 503 when Redis did not answer (rep NULL) or an
 * error reply came back; returns 1 when it answered. */
int api_reply_redis_failure(struct api_req *rq, const redisReply *rep);
/* 1 when Redis is up; else answers 503 unavailable and returns 0. */
int api_store_ready(struct api_req *rq);

#endif
