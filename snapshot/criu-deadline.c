/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The deadline around a checkpoint or restore (stoke-checkpoint.h).
 *
 * Why a timer signal and not a watchdog thread or process: whatever hangs
 * is a process we started (criu swrk, a criu binary, a page server, a
 * half-restored tree), and the thread waiting on it sits in recv(),
 * waitpid(), accept() or read(). Killing every descendant makes each of
 * those return; the signal, aimed at the waiting thread and installed
 * without SA_RESTART, interrupts the rest (EINTR). The handler uses only
 * raw system calls (open, getdents64, read, kill), so it is safe to run at
 * any point, also while the process has threads (the image streamer).
 */
#include "criu-internal.h"
#include "stoke-checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_SIGNAL (SIGRTMIN + 4)
#define MAX_VICTIMS 8192

static volatile sig_atomic_t deadline_expired;
static volatile sig_atomic_t deadline_armed;
static const char *volatile deadline_phase;
static const char *volatile expired_phase; /* the phase running at expiry */
static const char *deadline_what;
static unsigned int deadline_seconds;
static timer_t deadline_timer;

/* The victims found so far; static because the handler may not allocate. */
static pid_t victims[MAX_VICTIMS];
static size_t n_victims;

static pid_t parse_pid(const char *s, size_t len)
{
	pid_t v = 0;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* Stop `pid` before reading its children, so it cannot fork behind our
 * back, and remember it for the final SIGKILL. */
static void take_victim(pid_t pid)
{
	if (pid <= 0 || n_victims >= MAX_VICTIMS)
		return;
	(void) kill(pid, SIGSTOP);
	victims[n_victims++] = pid;
}

/* Every pid listed in one /proc/P/task/T/children file. */
static void take_children_file(const char *path)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	size_t start = 0;
	for (size_t i = 0; i <= (size_t) n; i++) {
		bool digit = i < (size_t) n && buf[i] >= '0' && buf[i] <= '9';
		if (digit)
			continue;
		if (i > start)
			take_victim(parse_pid(buf + start, i - start));
		start = i + 1;
	}
}

static void format_uint(char *out, size_t len, const char *prefix, unsigned long v,
			const char *suffix)
{
	char digits[24];
	size_t nd = 0, o = 0;
	do {
		digits[nd++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v && nd < sizeof(digits));
	for (const char *p = prefix; *p && o + 1 < len; p++)
		out[o++] = *p;
	while (nd && o + 1 < len)
		out[o++] = digits[--nd];
	for (const char *p = suffix; *p && o + 1 < len; p++)
		out[o++] = *p;
	out[o] = '\0';
}

/* The children of every thread of `pid` (a child belongs to the thread
 * that forked it). */
static void take_children_of(pid_t pid)
{
	char dir[64];
	format_uint(dir, sizeof(dir), "/proc/", (unsigned long) pid, "/task");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	static char dents[16384];
	long n;
	while ((n = syscall(SYS_getdents64, dfd, dents, sizeof(dents))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *) (dents + off);
			off += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			char path[128];
			size_t l = strlen(dir);
			memcpy(path, dir, l);
			path[l++] = '/';
			size_t nl = strlen(d->d_name);
			if (l + nl + sizeof("/children") > sizeof(path))
				continue;
			memcpy(path + l, d->d_name, nl);
			memcpy(path + l + nl, "/children", sizeof("/children"));
			take_children_file(path);
		}
	}
	close(dfd);
}

/* Breadth-first over the process tree below us: each victim is stopped as
 * it is found, its children are found next, then all get SIGKILL. */
static void kill_descendants(void)
{
	n_victims = 0;
	take_children_of(getpid());
	for (size_t i = 0; i < n_victims; i++)
		take_children_of(victims[i]);
	for (size_t i = 0; i < n_victims; i++)
		(void) kill(victims[i], SIGKILL);
}

static void on_deadline(int sig)
{
	(void) sig;
	if (!deadline_armed) /* a signal queued just before the disarm */
		return;
	int saved = errno;
	expired_phase = deadline_phase;
	deadline_expired = 1;
	kill_descendants();
	errno = saved;
}

int stoke_cr_deadline_arm(unsigned int seconds, const char *what, bool *ret_nested)
{
	if (ret_nested)
		*ret_nested = deadline_armed;
	if (deadline_armed)
		return 0;
	if (seconds == 0)
		return -EINVAL;

	/* Installed once and never removed: a timer signal still queued at
	 * disarm must find the handler (which then does nothing), not the
	 * default action, which would kill us. */
	static bool installed;
	if (!installed) {
		struct sigaction sa = {.sa_handler = on_deadline};
		sigemptyset(&sa.sa_mask);
		/* No SA_RESTART: the waiting call must return. */
		if (sigaction(DEADLINE_SIGNAL, &sa, NULL) < 0)
			return -errno;
		installed = true;
	}

	struct sigevent sev = {
		.sigev_notify = SIGEV_THREAD_ID,
		.sigev_signo = DEADLINE_SIGNAL,
	};
	sev._sigev_un._tid = (pid_t) syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &deadline_timer) < 0)
		return -errno;
	struct itimerspec its = {.it_value = {.tv_sec = seconds}};
	deadline_expired = 0;
	deadline_phase = NULL;
	expired_phase = NULL;
	deadline_what = what;
	deadline_seconds = seconds;
	if (timer_settime(deadline_timer, 0, &its, NULL) < 0) {
		int r = -errno;
		(void) timer_delete(deadline_timer);
		return r;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, DEADLINE_SIGNAL);
	(void) sigprocmask(SIG_UNBLOCK, &set, NULL);
	deadline_armed = 1;
	return 0;
}

void stoke_cr_deadline_phase(const char *phase)
{
	deadline_phase = phase;
}

bool stoke_cr_deadline_expired(void)
{
	return deadline_expired;
}

void stoke_cr_deadline_describe(char *buf, size_t len)
{
	const char *phase = deadline_expired ? expired_phase : deadline_phase;
	snprintf(buf, len, "%s timed out after %u s%s%s%s", deadline_what ? deadline_what : "operation",
		 deadline_seconds, phase ? " in phase \"" : "", phase ? phase : "",
		 phase ? "\"" : "");
}

void stoke_cr_deadline_disarm(void)
{
	if (!deadline_armed)
		return;
	deadline_armed = 0;
	(void) timer_delete(deadline_timer);
}
