/*
 * wl_files: the fd kinds ccr supports now (regular files, a directory, character
 * devices) with their numbers, flags, FD_CLOEXEC and offsets; fd 42 is a dup of
 * another fd, so both must share one open file description after restore. The fd
 * table must hold exactly these fds (plus 0, 1, 2).
 */
#include <dirent.h>
#include <sys/sysmacros.h>

#include "workload.h"

#define RW_SIZE 20000
#define RW_OFF 12345
#define APP_LEN 100
#define RO_LEN 100
#define RO_OFF 7
#define DUP_FD 42

struct fdwant {
	const char *name;
	char path[4352];
	int fd;
	int flags;   /* O_ACCMODE | O_APPEND | O_NONBLOCK bits wanted */
	int cloexec; /* FD_CLOEXEC wanted */
	off_t off;   /* wanted offset, or -1 to skip */
};

static struct fdwant fds[10];
static int nfds;

static struct fdwant *add(const char *name, const char *path, int oflags, int cloexec)
{
	struct fdwant *w = &fds[nfds++];

	w->name = name;
	snprintf(w->path, sizeof(w->path), "%s", path);
	w->fd = open(path, oflags | (cloexec ? O_CLOEXEC : 0), 0644);
	if (w->fd < 0)
		WL_DIE("open %s", path);
	w->flags = oflags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
	w->cloexec = cloexec;
	w->off = 0;
	return w;
}

static void write_pattern(const char *path, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[256];

	if (fd < 0)
		WL_DIE("create %s", path);
	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = (char)('a' + (done + i) % 26);
		if (write(fd, buf, n) != (ssize_t)n)
			WL_DIE("write %s", path);
		done += n;
	}
	close(fd);
}

/* The sorted fd numbers in /proc/self/fd, without the one used to list them. */
static int list_fds(int *out, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		WL_DIE("opendir /proc/self/fd");
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && n < max)
			out[n++] = atoi(e->d_name);
	closedir(d);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			int t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

static void check_fd(const struct fdwant *w)
{
	struct stat a, b;
	int fl = fcntl(w->fd, F_GETFL), fdfl = fcntl(w->fd, F_GETFD);

	if (fl < 0 || fdfl < 0) {
		wl_fail("%s: fd %d is not open: %s", w->name, w->fd, strerror(errno));
		return;
	}
	if ((fl & (O_ACCMODE | O_APPEND | O_NONBLOCK)) != w->flags)
		wl_fail("%s: fd %d flags %#x, want %#x", w->name, w->fd,
			fl & (O_ACCMODE | O_APPEND | O_NONBLOCK), w->flags);
	if (!!(fdfl & FD_CLOEXEC) != w->cloexec)
		wl_fail("%s: fd %d FD_CLOEXEC is %d, want %d", w->name, w->fd, !!(fdfl & FD_CLOEXEC),
			w->cloexec);
	if (w->off >= 0) {
		off_t off = lseek(w->fd, 0, SEEK_CUR);

		if (off != w->off)
			wl_fail("%s: fd %d offset %lld, want %lld", w->name, w->fd, (long long)off,
				(long long)w->off);
	}
	if (fstat(w->fd, &a) || stat(w->path, &b)) {
		wl_fail("%s: stat: %s", w->name, strerror(errno));
		return;
	}
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino || a.st_rdev != b.st_rdev ||
	    (a.st_mode & S_IFMT) != (b.st_mode & S_IFMT))
		wl_fail("%s: fd %d is not %s (dev %u:%u ino %llu rdev %u:%u vs dev %u:%u ino %llu rdev %u:%u)",
			w->name, w->fd, w->path, major(a.st_dev), minor(a.st_dev),
			(unsigned long long)a.st_ino, major(a.st_rdev), minor(a.st_rdev),
			major(b.st_dev), minor(b.st_dev), (unsigned long long)b.st_ino,
			major(b.st_rdev), minor(b.st_rdev));
}

int main(int argc, char **argv)
{
	struct fdwant *rw, *app, *ro, *dir, *null, *zero, *urnd, *dup;
	int before[64], after[64], nbefore, nafter;
	char buf[4096];
	struct stat st;

	wl_install_term();
	wl_scratch(argc, argv);

	write_pattern(wl_path("rw.dat"), RW_SIZE);
	rw = add("rw.dat O_RDWR", wl_path("rw.dat"), O_RDWR, 1);
	if (lseek(rw->fd, RW_OFF, SEEK_SET) != RW_OFF)
		WL_DIE("lseek rw");
	rw->off = RW_OFF;

	app = add("app.dat O_APPEND", wl_path("app.dat"), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0);
	memset(buf, 'A', APP_LEN);
	if (write(app->fd, buf, APP_LEN) != APP_LEN)
		WL_DIE("write app");
	app->off = APP_LEN;

	write_pattern(wl_path("ro.dat"), RO_LEN);
	ro = add("ro.dat O_RDONLY", wl_path("ro.dat"), O_RDONLY, 1);
	if (lseek(ro->fd, RO_OFF, SEEK_SET) != RO_OFF)
		WL_DIE("lseek ro");
	ro->off = RO_OFF;

	dir = add("scratch dir", wl_path("."), O_RDONLY | O_DIRECTORY, 1);
	dir->off = -1;
	dir->flags &= O_ACCMODE;
	null = add("/dev/null", "/dev/null", O_RDWR, 0);
	zero = add("/dev/zero", "/dev/zero", O_RDONLY, 1);
	zero->off = -1;
	urnd = add("/dev/urandom", "/dev/urandom", O_RDONLY | O_NONBLOCK, 0);
	urnd->off = -1;
	null->off = -1;

	/* fd 42 shares ro.dat's open file description; no FD_CLOEXEC (dup2 clears it). */
	if (dup2(ro->fd, DUP_FD) != DUP_FD)
		WL_DIE("dup2");
	dup = &fds[nfds++];
	*dup = *ro;
	dup->name = "fd 42 (dup of ro.dat)";
	dup->fd = DUP_FD;
	dup->cloexec = 0;

	nbefore = list_fds(before, 64);

	wl_ready();
	if (wl_selftest_break())
		lseek(rw->fd, 1, SEEK_CUR);
	wl_wait_for_term();

	for (int i = 0; i < nfds; i++)
		check_fd(&fds[i]);

	nafter = list_fds(after, 64);
	if (nafter != nbefore || memcmp(before, after, nbefore * sizeof(int))) {
		wl_fail("fd table differs: %d fds before, %d after", nbefore, nafter);
		for (int i = 0; i < nafter; i++)
			wl_info("fd %d open after restore", after[i]);
	}

	/* rw.dat reads its own content at the saved offset. */
	if (read(rw->fd, buf, 3) != 3 || buf[0] != (char)('a' + RW_OFF % 26) ||
	    buf[1] != (char)('a' + (RW_OFF + 1) % 26))
		wl_fail("rw.dat: wrong data at offset %d", RW_OFF);

	/* fd 42 and ro.dat share the offset: reading one moves the other. */
	if (read(DUP_FD, buf, 1) != 1 || buf[0] != (char)('a' + RO_OFF % 26))
		wl_fail("fd 42: wrong data at offset %d", RO_OFF);
	WL_CHECK(lseek(ro->fd, 0, SEEK_CUR) == RO_OFF + 1,
		 "fd 42 and ro.dat no longer share an open file description");

	/* O_APPEND writes land at the end even after seeking to 0. */
	lseek(app->fd, 0, SEEK_SET);
	if (write(app->fd, "Z", 1) != 1)
		wl_fail("app.dat: write: %s", strerror(errno));
	if (fstat(app->fd, &st) || st.st_size != APP_LEN + 1)
		wl_fail("app.dat: size %lld after append, want %d", (long long)st.st_size, APP_LEN + 1);
	{
		int fd = open(wl_path("app.dat"), O_RDONLY);

		if (fd < 0 || pread(fd, buf, APP_LEN + 1, 0) != APP_LEN + 1 || buf[0] != 'A' ||
		    buf[APP_LEN - 1] != 'A' || buf[APP_LEN] != 'Z')
			wl_fail("app.dat content wrong after append");
		if (fd >= 0)
			close(fd);
	}

	/* The devices still behave as themselves. */
	memset(buf, 0x55, sizeof(buf));
	if (read(zero->fd, buf, sizeof(buf)) != sizeof(buf))
		wl_fail("/dev/zero: read: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i]) {
			wl_fail("/dev/zero gave a non-zero byte at %zu", i);
			break;
		}
	if (read(null->fd, buf, 10) != 0)
		wl_fail("/dev/null: read did not return EOF");
	if (write(null->fd, buf, 10) != 10)
		wl_fail("/dev/null: write failed: %s", strerror(errno));
	if (read(urnd->fd, buf, 64) != 64)
		wl_fail("/dev/urandom: read: %s", strerror(errno));
	if (read(dir->fd, buf, 1) != -1 || errno != EISDIR)
		wl_fail("directory fd: read did not fail with EISDIR");
	if (faccessat(dir->fd, "rw.dat", R_OK, 0))
		wl_fail("directory fd: rw.dat not found relative to it");
	return wl_finish();
}
