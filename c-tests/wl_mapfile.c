/*
 * wl_mapfile: a private mapping of a file of its own (map.bin, three pages, one
 * of them written since: copied on write) and another file open read-write at an
 * offset (rw.dat). After restore the mapping must read the file's pages and the
 * written one, and the fd must read rw.dat at its offset: both are the files they
 * were, not others put at the same paths.
 */
#include <sys/mman.h>

#include "workload.h"

#define PAGE 4096
#define PAGES 3
#define RW_SIZE 20000
#define RW_OFF 12345

static char pattern(size_t i)
{
	return (char)('a' + (i * 7 + i / PAGE) % 26);
}

static void write_pattern(const char *path, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[PAGE];

	if (fd < 0)
		WL_DIE("create %s", path);
	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof(buf) ? len - done : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(done + i);
		if (write(fd, buf, n) != (ssize_t)n)
			WL_DIE("write %s", path);
		done += n;
	}
	close(fd);
}

int main(int argc, char **argv)
{
	char *map, buf[8];
	int fd, rw;

	wl_install_term();
	wl_scratch(argc, argv);

	write_pattern(wl_path("map.bin"), PAGES * PAGE);
	fd = open(wl_path("map.bin"), O_RDONLY);
	if (fd < 0)
		WL_DIE("open map.bin");
	map = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		WL_DIE("mmap map.bin");
	close(fd);
	memset(map + PAGE, 'W', PAGE);

	write_pattern(wl_path("rw.dat"), RW_SIZE);
	rw = open(wl_path("rw.dat"), O_RDWR);
	if (rw < 0)
		WL_DIE("open rw.dat");
	if (lseek(rw, RW_OFF, SEEK_SET) != RW_OFF)
		WL_DIE("lseek rw.dat");

	wl_ready();
	if (wl_selftest_break())
		map[2 * PAGE + 5] = 'X';
	wl_wait_for_term();

	for (size_t i = 0; i < PAGES * PAGE; i++) {
		char want = i / PAGE == 1 ? 'W' : pattern(i);

		if (map[i] != want) {
			wl_fail("map.bin mapping: byte %zu is %#x, want %#x", i, map[i], want);
			break;
		}
	}
	WL_CHECK(lseek(rw, 0, SEEK_CUR) == RW_OFF, "rw.dat: offset %lld, want %d",
		 (long long)lseek(rw, 0, SEEK_CUR), RW_OFF);
	if (pread(rw, buf, 2, RW_OFF) != 2 || buf[0] != pattern(RW_OFF) || buf[1] != pattern(RW_OFF + 1))
		wl_fail("rw.dat: wrong data at offset %d", RW_OFF);
	return wl_finish();
}
