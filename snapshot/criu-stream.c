/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An image streamer for CRIU's --stream restore, serving the image files of
 * a snapshot without unpacking them first (CRIU's criu-image-streamer
 * protocol, serve side).
 *
 * CRIU connects to IMAGES_DIR/streamer-serve.sock once; for every image it
 * opens it sends a request (u32 length + protobuf {1: filename}), we answer
 * (u32 length + protobuf {1: exists}) and, when the file exists, CRIU sends
 * the write end of a pipe (SCM_RIGHTS, one data byte) and reads the file
 * from the read end until we close it. CRIU keeps several files open at once
 * (a pagemap and its pages image), so each file is written by a thread of
 * its own, with a reader of its own (readers are single-threaded).
 */
#include "criu-internal.h"
#include "stoke-checkpoint.h"
#include "stoke-snapshot.h"

#include "cleanup.h"
#include "fd-util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define SERVE_SOCKET "streamer-serve.sock"
#define MAX_FILES    4096

struct stoke_cr_streamer {
	char *snapshot;
	char *sock_path;
	int listen_fd;
	pthread_t server;
	bool server_started;
	pthread_mutex_t lock;
	pthread_t files[MAX_FILES];
	size_t n_files;
	int error; /* first -errno met */
	struct snap_stats stats;
};

struct file_job {
	struct stoke_cr_streamer *s;
	char name[256];
	int pipe_fd;
};

static void set_error(struct stoke_cr_streamer *s, int r)
{
	pthread_mutex_lock(&s->lock);
	if (s->error == 0)
		s->error = r;
	pthread_mutex_unlock(&s->lock);
}

static void *serve_file(void *arg)
{
	struct file_job *j = arg;
	struct snap_reader *rd = NULL;
	sigset_t pipe_sig;
	/* CRIU closing a pipe early must give EPIPE here, not kill the caller. */
	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
	size_t idx;
	int r = snap_reader_open(j->s->snapshot, NULL, &rd);
	if (r >= 0)
		r = snap_reader_find(rd, j->name, &idx);
	if (r >= 0) {
		/* A bigger pipe: fewer wake-ups for the pages image. */
		(void) fcntl(j->pipe_fd, F_SETPIPE_SZ, 1 << 20);
		r = snap_reader_extract_fd(rd, idx, j->pipe_fd);
	}
	if (rd) {
		struct snap_stats st;
		snap_reader_get_stats(rd, &st);
		pthread_mutex_lock(&j->s->lock);
		j->s->stats.bytes_read += st.bytes_read;
		j->s->stats.bytes_decompressed += st.bytes_decompressed;
		j->s->stats.read_ns += st.read_ns;
		j->s->stats.decompress_ns += st.decompress_ns;
		pthread_mutex_unlock(&j->s->lock);
		snap_reader_free(rd);
	}
	if (r < 0 && r != -EPIPE)
		set_error(j->s, r);
	close(j->pipe_fd);
	free(j);
	return NULL;
}

/* protobuf varint */
static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	do {
		p[n] = (uint8_t) (v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *ret)
{
	uint64_t v = 0;
	for (unsigned shift = 0; *pos < len && shift < 64; shift += 7) {
		uint8_t b = p[(*pos)++];
		v |= (uint64_t) (b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/* ImgStreamerRequestEntry { string filename = 1; } */
static int parse_request(const uint8_t *p, size_t len, char *name, size_t name_len)
{
	size_t pos = 0;
	while (pos < len) {
		uint64_t key, n;
		if (get_varint(p, len, &pos, &key) < 0)
			return -EBADMSG;
		if ((key & 7) != 2 || get_varint(p, len, &pos, &n) < 0 || n > len - pos)
			return -EBADMSG;
		if (key >> 3 == 1) {
			if (n == 0 || n >= name_len || memchr(p + pos, '/', n))
				return -EBADMSG;
			memcpy(name, p + pos, n);
			name[n] = '\0';
			return 0;
		}
		pos += n;
	}
	return -EBADMSG;
}

static int send_reply(int sock, bool exists)
{
	uint8_t msg[4 + 2];
	uint32_t len = 2;
	memcpy(msg, &len, 4);
	msg[4] = 0x08; /* field 1, varint */
	put_varint(msg + 5, exists);
	return cs_write_all(sock, msg, sizeof(msg));
}

static int serve_one(struct stoke_cr_streamer *s, struct snap_reader *index, int sock)
{
	uint32_t len;
	uint8_t buf[512];
	char name[256];
	ssize_t n = cs_read_all(sock, &len, sizeof(len));
	if (n == 0)
		return 0; /* CRIU is done */
	if (n != sizeof(len) || len > sizeof(buf))
		return -EBADMSG;
	if (cs_read_all(sock, buf, len) != (ssize_t) len)
		return -EBADMSG;
	int r = parse_request(buf, len, name, sizeof(name));
	if (r < 0)
		return r;
	size_t idx;
	bool exists = snap_reader_find(index, name, &idx) == 0;
	r = send_reply(sock, exists);
	if (r < 0 || !exists)
		return r < 0 ? r : 1;
	int pipe_fd = cs_recv_fd(sock, NULL, 0);
	if (pipe_fd < 0)
		return pipe_fd;

	struct file_job *j = calloc(1, sizeof(*j));
	if (!j) {
		close(pipe_fd);
		return -ENOMEM;
	}
	j->s = s;
	j->pipe_fd = pipe_fd;
	snprintf(j->name, sizeof(j->name), "%s", name);
	if (s->n_files == MAX_FILES ||
	    pthread_create(&s->files[s->n_files], NULL, serve_file, j) != 0) {
		close(pipe_fd);
		free(j);
		return -EAGAIN;
	}
	s->n_files++;
	return 1;
}

static void *server(void *arg)
{
	struct stoke_cr_streamer *s = arg;
	struct snap_reader *index = NULL;
	int r = snap_reader_open(s->snapshot, NULL, &index);
	int sock = r < 0 ? -1 : accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (r >= 0 && sock < 0)
		r = -errno;
	while (r >= 0) {
		r = serve_one(s, index, sock);
		if (r == 0)
			break;
	}
	if (r < 0)
		set_error(s, r);
	if (sock >= 0)
		close(sock);
	snap_reader_free(index);
	return NULL;
}

int stoke_cr_streamer_start(const char *snapshot, const char *images_dir,
			    struct stoke_cr_streamer **ret)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stoke_cr_streamer *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->listen_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	if (asprintf(&s->sock_path, "%s/%s", images_dir, SERVE_SOCKET) < 0) {
		s->sock_path = NULL;
		r = -ENOMEM;
		goto fail;
	}
	s->snapshot = strdup(snapshot);
	if (!s->snapshot || strlen(s->sock_path) >= sizeof(addr.sun_path)) {
		r = s->snapshot ? -ENAMETOOLONG : -ENOMEM;
		goto fail;
	}
	strcpy(addr.sun_path, s->sock_path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *) &addr, sizeof(addr)) < 0 ||
	    listen(s->listen_fd, 1) < 0) {
		r = -errno;
		goto fail;
	}
	if (pthread_create(&s->server, NULL, server, s) != 0) {
		r = -EAGAIN;
		goto fail;
	}
	s->server_started = true;
	*ret = s;
	return 0;
fail:
	cr_set_error("cannot start the image streamer in %s", images_dir);
	stoke_cr_streamer_stop(s, NULL);
	return r;
}

int stoke_cr_streamer_stop(struct stoke_cr_streamer *s, struct snap_stats *ret_stats)
{
	if (!s)
		return 0;
	/* A CRIU that never connected (it failed first) must not leave the
	 * server thread in accept(). */
	if (s->listen_fd >= 0)
		shutdown(s->listen_fd, SHUT_RDWR);
	if (s->server_started)
		pthread_join(s->server, NULL);
	for (size_t i = 0; i < s->n_files; i++)
		pthread_join(s->files[i], NULL);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->sock_path)
		unlink(s->sock_path);
	int r = s->error;
	if (ret_stats)
		*ret_stats = s->stats;
	free(s->snapshot);
	free(s->sock_path);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return r;
}
