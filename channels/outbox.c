/*
 * outbox.c - driver "outbox": write messages to local files instead of
 * sending them (development, audits, tests, a hand-off to another tool).
 *
 * Channel "email": a Maildir at DIR/email/{tmp,new,cur}; each message is an
 * RFC 5322 / MIME message (CRLF line ends, UTF-8 bodies in base64, RFC 2047
 * subject) written to tmp/ and renamed into new/.  Every other channel:
 * one JSON line per message appended to DIR/<channel>.jsonl.  The provider
 * id is the Maildir file name or "<channel>.jsonl:<line>".
 *
 * Owns: its directory settings, the JSONL file descriptor and line count,
 * and a FIFO of write jobs.  File I/O runs on the libuv threadpool, one
 * batch at a time per channel, so lines land in send order; with fsync=yes
 * each batch ends with fdatasync (and the Maildir directory fsync) before
 * any result is reported.  Start creates the directories (once, on the
 * loop).  Never touches: the loop's state from the worker, logging from the
 * worker.  Limits: the line number counts this process's view of the file
 * (exact with one writer); a batch holds at most OUTBOX_BATCH messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "mime.h"
#include "log.h"
#include "util.h"

#define OUTBOX_BATCH        256
#define OUTBOX_DEFAULT_DIR  "var/outbox"
#define OUTBOX_DEFAULT_FROM "clubd <clubd@localhost>"

struct outbox_job {
	struct outbox_job *next;
	chan_done_cb done;
	void *arg;
	char *data; /* the JSON line or the whole message */
	size_t len;
	char name[128]; /* Maildir file name */
	int decided;    /* res is final already (refused), no I/O */
	struct chan_result res;
};

struct outbox {
	char *dir;  /* base directory */
	char *path; /* DIR/<channel>.jsonl, or the Maildir DIR/email */
	char *from;
	char from_name[256], from_addr[256]; /* from, split for the MIME builder */
	int maildir;
	int fsync;
	char host[64];
	unsigned long seq;
	char jsonl_name[64]; /* "<channel>.jsonl" for provider ids */

	/* worker state: touched only by the batch in flight (or when idle) */
	int fd;
	int64_t lines;

	/* loop state */
	struct outbox_job *q_head, *q_tail;
	struct outbox_job *batch;
	uv_work_t work;
	int busy;
	uv_loop_t *loop;
	int stopping;
	void (*stopped)(struct chan *c);
	struct chan *c;
};

/* ---- configure / start ------------------------------------------------ */

static int outbox_configure(struct chan *c, struct cfg_error *err)
{
	struct cfg_section *sec = c->cfg->sec;
	struct outbox *ob = xcalloc(1, sizeof *ob);
	ob->fd = -1;
	ob->c = c;
	c->priv = ob;

	const char *dir = cfg_sec_str(sec, "dir", NULL);
	if (!dir || !*dir)
		dir = c->root && c->root->outbox_dir && *c->root->outbox_dir ? c->root->outbox_dir
		                                                             : OUTBOX_DEFAULT_DIR;
	ob->dir = xstrdup(dir);
	if (cfg_sec_bool(sec, "fsync", 0, &ob->fsync, err) < 0)
		return -1;
	ob->maildir = strcmp(c->cfg->name, "email") == 0;
	if (ob->maildir) {
		const char *from = cfg_sec_str(sec, "from", OUTBOX_DEFAULT_FROM);
		for (const char *p = from; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				cfg_error_set(err, sec, "from", "contains control characters");
				return -1;
			}
		if (!*from) {
			cfg_error_set(err, sec, "from", "is empty");
			return -1;
		}
		if (mime_split_mailbox(from, ob->from_name, sizeof ob->from_name, ob->from_addr,
		                       sizeof ob->from_addr) < 0) {
			cfg_error_set(err, sec, "from",
			              "not a mailbox like: clubd <clubd@example.com>");
			return -1;
		}
		ob->from = xstrdup(from);
		ob->path = xasprintf("%s/email", ob->dir);
	} else {
		ob->path = xasprintf("%s/%s.jsonl", ob->dir, c->cfg->name);
		snprintf(ob->jsonl_name, sizeof ob->jsonl_name, "%s.jsonl", c->cfg->name);
	}
	return 0;
}

/* mkdir -p; 0 or negative errno. */
static int mkdir_p(const char *path)
{
	char *p = xstrdup(path);
	int r = 0;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char saved = *s;
			*s = '\0';
			if (mkdir(p, 0750) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			*s = saved;
			if (!saved)
				break;
		}
	}
	free(p);
	return r;
}

static int outbox_start(struct chan *c, uv_loop_t *loop)
{
	struct outbox *ob = c->priv;
	ob->loop = loop;
	int r = mkdir_p(ob->dir);
	if (r == 0 && ob->maildir) {
		static const char *const sub[] = {"", "/tmp", "/new", "/cur"};
		for (size_t i = 0; i < ARRAY_SIZE(sub) && r == 0; i++) {
			char *d = xasprintf("%s%s", ob->path, sub[i]);
			if (mkdir(d, 0750) < 0 && errno != EEXIST)
				r = -errno;
			free(d);
		}
	}
	if (r < 0) {
		log_err("outbox", "chan=%s cannot create directory dir=%s err=%s", c->cfg->name,
		        log_q(ob->dir), log_q(strerror(-r)));
		return r;
	}
	if (gethostname(ob->host, sizeof ob->host) < 0 || !ob->host[0])
		snprintf(ob->host, sizeof ob->host, "localhost");
	ob->host[sizeof ob->host - 1] = '\0';
	/* Maildir names: no '/' or ':' in the host part. */
	for (char *p = ob->host; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			*p = '_';
	log_info("outbox", "chan=%s writing to path=%s format=%s fsync=%d", c->cfg->name,
	         log_q(ob->path), ob->maildir ? "maildir" : "jsonl", ob->fsync);
	return 0;
}

/* ---- building messages (loop thread) ---------------------------------- */

/* The RFC 5322 message through the one MIME builder (mime.c), or a refusal
 * reason (PERMFAIL). */
static int build_email(const struct outbox *ob, const struct chan_msg *m, struct buf *b,
                       char *reason, size_t rn)
{
	struct mime_msg mm = {
	    .from_name = ob->from_name,
	    .from_addr = ob->from_addr,
	    .to_addr = m->to,
	    .subject = m->subject,
	    .text = m->text,
	    .html = m->html,
	    .msg_id = m->id,
	    .id_domain = "clubd", /* a local outbox has no sending domain of its own */
	    .date_ms = now_ms(),
	};
	struct mime_out mo = {0};
	if (!m->to || !*m->to) {
		snprintf(reason, rn, "no address");
		return -1;
	}
	if (mime_build(&mm, b, &mo) < 0) {
		snprintf(reason, rn, "%s", mo.why ? mo.why : "refused by the MIME builder");
		return -1;
	}
	return 0;
}

/* ---- the worker -------------------------------------------------------- */

static void job_fail(struct outbox_job *j, const char *what, int e)
{
	char eb[128];
	j->res.status = CHAN_TEMPFAIL;
	snprintf(j->res.reason, sizeof j->res.reason, "%s: %s", what, strerror_r(e, eb, sizeof eb));
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Open the JSONL file and count its lines (worker thread). */
static int jsonl_open(struct outbox *ob)
{
	int fd = open(ob->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	int rfd = open(ob->path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	int64_t lines = 0;
	char buf[65536], last = '\n';
	for (;;) {
		ssize_t n = read(rfd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			close(rfd);
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
		last = buf[n - 1];
	}
	close(rfd);
	/* A torn last line (crash mid-write) is ended so ours start clean. */
	if (last != '\n') {
		int r = write_all(fd, "\n", 1);
		if (r < 0) {
			close(fd);
			return r;
		}
		lines++;
	}
	ob->fd = fd;
	ob->lines = lines;
	return 0;
}

static void jsonl_write(struct outbox *ob, struct outbox_job *j)
{
	int r = 0;
	if (ob->fd < 0 && (r = jsonl_open(ob)) < 0) {
		job_fail(j, "open", -r);
		return;
	}
	off_t before = lseek(ob->fd, 0, SEEK_END);
	r = write_all(ob->fd, j->data, j->len);
	if (r < 0) {
		/* Take back a partial line (one writer assumed). */
		if (before >= 0 && ftruncate(ob->fd, before) < 0) {
			/* nothing more we can do; the next open ends the line */
		}
		job_fail(j, "write", -r);
		return;
	}
	ob->lines++;
	j->res.status = CHAN_OK;
	snprintf(j->res.provider_id, sizeof j->res.provider_id, "%s:%lld", ob->jsonl_name,
	         (long long)ob->lines);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static void maildir_write(struct outbox *ob, struct outbox_job *j)
{
	char tmp[4096], dst[4096];
	snprintf(tmp, sizeof tmp, "%s/tmp/%s", ob->path, j->name);
	snprintf(dst, sizeof dst, "%s/new/%s", ob->path, j->name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		job_fail(j, "maildir open", errno);
		return;
	}
	int r = write_all(fd, j->data, j->len);
	if (r == 0 && ob->fsync && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, dst) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		job_fail(j, "maildir write", -r);
		return;
	}
	j->res.status = CHAN_OK;
	snprintf(j->res.provider_id, sizeof j->res.provider_id, "%s", j->name);
}

static void work_cb(uv_work_t *w)
{
	struct outbox *ob = container_of(w, struct outbox, work);
	int wrote = 0;
	for (struct outbox_job *j = ob->batch; j; j = j->next) {
		if (j->decided)
			continue;
		if (ob->maildir)
			maildir_write(ob, j);
		else
			jsonl_write(ob, j);
		wrote += j->res.status == CHAN_OK;
	}
	if (!ob->fsync || !wrote)
		return;
	/* Group commit: nothing is reported OK before it is on disk. */
	int r = 0;
	if (ob->maildir) {
		char d[4096];
		snprintf(d, sizeof d, "%s/new", ob->path);
		r = fsync_dir(d);
	} else if (fdatasync(ob->fd) < 0) {
		r = -errno;
	}
	if (r < 0)
		for (struct outbox_job *j = ob->batch; j; j = j->next)
			if (!j->decided && j->res.status == CHAN_OK) {
				j->res.provider_id[0] = '\0';
				job_fail(j, "fsync", -r);
			}
}

static void outbox_kick(struct outbox *ob);

static void outbox_finish_stop(struct chan *c)
{
	struct outbox *ob = c->priv;
	if (ob->fd >= 0) {
		close(ob->fd);
		ob->fd = -1;
	}
	void (*stopped)(struct chan *) = ob->stopped;
	ob->stopped = NULL;
	if (stopped)
		stopped(c);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct outbox *ob = container_of(w, struct outbox, work);
	struct outbox_job *j = ob->batch;
	ob->batch = NULL;
	ob->busy = 0;
	while (j) {
		struct outbox_job *next = j->next;
		if (status < 0 && !j->decided) /* never cancelled, but be exact */
			job_fail(j, "cancelled", ECANCELED);
		if (j->res.status == CHAN_TEMPFAIL)
			log_warnx("outbox", "chan=%s status=tempfail reason=%s", ob->c->cfg->name,
			          log_q(j->res.reason));
		j->done(j->arg, &j->res);
		free(j->data);
		free(j);
		j = next;
	}
	outbox_kick(ob);
	if (ob->stopping && !ob->busy && !ob->q_head && ob->stopped)
		outbox_finish_stop(ob->c);
}

/* Start the next batch when idle. */
static void outbox_kick(struct outbox *ob)
{
	if (ob->busy || !ob->q_head)
		return;
	struct outbox_job *head = ob->q_head, *j = head;
	for (int n = 1; n < OUTBOX_BATCH && j->next; n++)
		j = j->next;
	ob->q_head = j->next;
	if (!ob->q_head)
		ob->q_tail = NULL;
	j->next = NULL;
	ob->batch = head;
	ob->busy = 1;
	int r = uv_queue_work(ob->loop, &ob->work, work_cb, after_work_cb);
	if (r < 0) {
		/* uv_queue_work fails only on programming errors */
		log_err("outbox", "uv_queue_work failed err=%s", log_q(uv_strerror(r)));
		abort();
	}
}

static int outbox_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct outbox *ob = c->priv;
	if (ob->stopping)
		return -ESHUTDOWN;
	struct outbox_job *j = xcalloc(1, sizeof *j);
	j->done = done;
	j->arg = arg;
	if (ob->maildir) {
		struct buf b;
		buf_init(&b, 0);
		if (build_email(ob, m, &b, j->res.reason, sizeof j->res.reason) < 0) {
			j->decided = 1;
			j->res.status = CHAN_PERMFAIL;
			buf_free(&b);
		} else {
			j->len = b.len;
			j->data = buf_steal(&b);
			int64_t t = now_ms();
			snprintf(j->name, sizeof j->name, "%lld.%d_%lu.%s", (long long)(t / 1000),
			         (int)getpid(), ++ob->seq, ob->host);
		}
	} else {
		char *line = chan_msg_json(m, now_ms());
		j->len = strlen(line) + 1;
		j->data = xmalloc(j->len + 1);
		memcpy(j->data, line, j->len - 1);
		j->data[j->len - 1] = '\n';
		j->data[j->len] = '\0';
		free(line);
	}
	if (ob->q_tail)
		ob->q_tail->next = j;
	else
		ob->q_head = j;
	ob->q_tail = j;
	outbox_kick(ob);
	return 0;
}

static void outbox_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct outbox *ob = c->priv;
	ob->stopping = 1;
	ob->stopped = stopped;
	if (!ob->busy && !ob->q_head)
		outbox_finish_stop(c);
}

static void outbox_destroy(struct chan *c)
{
	struct outbox *ob = c->priv;
	if (!ob)
		return;
	if (ob->fd >= 0)
		close(ob->fd);
	free(ob->dir);
	free(ob->path);
	free(ob->from);
	free(ob);
	c->priv = NULL;
}

const struct chan_driver chan_outbox_driver = {
    .name = "outbox",
    .configure = outbox_configure,
    .start = outbox_start,
    .send = outbox_send,
    .stop = outbox_stop,
    .destroy = outbox_destroy,
};
