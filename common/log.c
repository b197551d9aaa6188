/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

static int log_fd = -1;
static enum cs_log_format log_format = CS_LOG_TEXT;
static enum cs_log_level log_max_level = CS_LOG_INFO;
static bool log_to_stderr = true;
static bool log_stderr_logfmt;
static const char *log_ident = "stoke";

static const char *const level_names[] = {
	[CS_LOG_ERROR] = "error",
	[CS_LOG_WARNING] = "warning",
	[CS_LOG_INFO] = "info",
	[CS_LOG_DEBUG] = "debug",
};

int cs_log_open(const char *path, enum cs_log_format format)
{
	log_format = format;
	if (!path || !*path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	return 0;
}

void cs_log_set_level(enum cs_log_level level)
{
	log_max_level = level;
}

void cs_log_set_stderr(bool enabled)
{
	log_to_stderr = enabled;
}

void cs_log_set_stderr_logfmt(bool enabled)
{
	log_stderr_logfmt = enabled;
}

void cs_log_set_ident(const char *ident)
{
	log_ident = ident;
}

/* Expand "%m" into the text of `error`, since our errors travel as return
 * values, not in errno. The result is always NUL-terminated. */
static void expand_percent_m(char *dst, size_t len, const char *fmt, int error)
{
	const char *text = strerror(error < 0 ? -error : error);
	size_t o = 0;

	for (const char *p = fmt; *p && o + 1 < len; p++) {
		if (p[0] == '%' && p[1] == 'm') {
			for (const char *t = text; *t && o + 1 < len; t++)
				dst[o++] = *t == '%' ? '?' : *t;
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			dst[o++] = *p++;
			if (o + 1 < len)
				dst[o++] = *p;
		} else {
			dst[o++] = *p;
		}
	}
	dst[o] = '\0';
}

static void write_line(int fd, const char *line, size_t len)
{
	/* One write per line so concurrent writers do not interleave. Losing a
	 * log line is preferable to failing the operation it describes. */
	while (len > 0) {
		ssize_t n = write(fd, line, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		line += n;
		len -= (size_t) n;
	}
}

/* RFC 3339 with nanoseconds, UTC: what runc's logs carry. */
static void time_stamp(char *stamp, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, len, "%Y-%m-%dT%H:%M:%S", &tm);
	size_t l = strlen(stamp);
	snprintf(stamp + l, len - l, ".%09ldZ", ts.tv_nsec);
}

static void write_json_line(enum cs_log_level level, const char *msg)
{
	char stamp[64];

	time_stamp(stamp, sizeof(stamp));

	json_object *o = json_object_new_object();
	json_object_object_add(o, "level", json_object_new_string(level_names[level]));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	json_object_object_add(o, "time", json_object_new_string(stamp));
	size_t n;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	char line[8192];
	if (n + 1 > sizeof(line))
		n = sizeof(line) - 1; /* msg is at most 4 KiB; keep the line whole */
	memcpy(line, s, n);
	line[n] = '\n';
	write_line(log_fd, line, n + 1);
	json_object_put(o);
}

/* runc's (logrus's) text line: time="..." level=... msg="...", the message
 * quoted so that one message stays one line whatever it holds. */
static void write_logfmt_line(int fd, enum cs_log_level level, const char *msg)
{
	char stamp[64], line[4096 * 4 + 128]; /* a message of 4 KiB, every byte escaped */
	size_t o;

	time_stamp(stamp, sizeof(stamp));
	o = (size_t) snprintf(line, sizeof(line), "time=\"%s\" level=%s msg=\"", stamp,
			      level_names[level]);
	for (const unsigned char *p = (const unsigned char *) msg; *p && o + 8 < sizeof(line);
	     p++) {
		if (*p == '"' || *p == '\\') {
			line[o++] = '\\';
			line[o++] = (char) *p;
		} else if (*p == '\n') {
			line[o++] = '\\';
			line[o++] = 'n';
		} else if (*p == '\t') {
			line[o++] = '\\';
			line[o++] = 't';
		} else if (*p < 0x20 || *p == 0x7f) {
			o += (size_t) snprintf(line + o, sizeof(line) - o, "\\x%02x", *p);
		} else {
			line[o++] = (char) *p;
		}
	}
	line[o++] = '"';
	line[o++] = '\n';
	write_line(fd, line, o);
}

void cs_logv(enum cs_log_level level, int error, const char *fmt, va_list ap)
{
	char expanded[1024], msg[4096];
	int saved = errno;

	if (level > log_max_level)
		return;
	expand_percent_m(expanded, sizeof(expanded), fmt, error ? error : saved);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(msg, sizeof(msg), expanded, ap);
#pragma GCC diagnostic pop

	if (log_to_stderr && log_stderr_logfmt) {
		write_logfmt_line(STDERR_FILENO, level, msg);
	} else if (log_to_stderr) {
		char line[sizeof(msg) + 64];
		int n = snprintf(line, sizeof(line), "%s: %s%s\n", log_ident,
				 level <= CS_LOG_WARNING ? (level == CS_LOG_ERROR ? "error: " : "warning: ")
							 : "",
				 msg);
		if (n > 0)
			write_line(STDERR_FILENO, line, (size_t) n < sizeof(line) ? (size_t) n
										 : sizeof(line) - 1);
	}
	if (log_fd >= 0) {
		if (log_format == CS_LOG_JSON) {
			write_json_line(level, msg);
		} else {
			char line[sizeof(msg) + 32];
			int n = snprintf(line, sizeof(line), "%s: %s\n", level_names[level], msg);
			if (n > 0)
				write_line(log_fd, line,
					   (size_t) n < sizeof(line) ? (size_t) n : sizeof(line) - 1);
		}
	}
	errno = saved;
}

void cs_log(enum cs_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cs_logv(level, 0, fmt, ap);
	va_end(ap);
}

int cs_log_errno(enum cs_log_level level, int error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cs_logv(level, error, fmt, ap);
	va_end(ap);
	return error < 0 ? error : -EIO;
}
