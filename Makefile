# Builds libccr.so (with soname, symlinks and a pkg-config file), the ccr binary
# and the C test programs. `make install PREFIX=/usr/local` installs them.

PROFILE  ?= release
PREFIX   ?= /usr/local
BUILD    := $(CURDIR)/build
ABI      := 1
VERSION  := 1.0.0
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
TARGET   := $(CURDIR)/target/$(if $(filter release,$(PROFILE)),release,debug)

.PHONY: all cargo lib ctests install clean

all: lib ctests

cargo:
	cargo build $(CARGO_PROFILE_FLAG) --workspace

# Copied beside and renamed over: a program running with the old library keeps
# its mapping (cp in place truncates it under them: SIGBUS).
lib: cargo
	mkdir -p $(BUILD)/lib/pkgconfig $(BUILD)/include $(BUILD)/bin
	cp $(TARGET)/libccr_ffi.so $(BUILD)/lib/.libccr.so.new
	mv -f $(BUILD)/lib/.libccr.so.new $(BUILD)/lib/libccr.so.$(VERSION)
	ln -sf libccr.so.$(VERSION) $(BUILD)/lib/libccr.so.$(ABI)
	ln -sf libccr.so.$(ABI) $(BUILD)/lib/libccr.so
	cp include/ccr.h $(BUILD)/include/ccr.h
	cp $(TARGET)/ccr $(BUILD)/bin/.ccr.new
	mv -f $(BUILD)/bin/.ccr.new $(BUILD)/bin/ccr
	sed -e 's|@PREFIX@|$(BUILD)|' -e 's|@VERSION@|$(VERSION)|' ccr.pc.in > $(BUILD)/lib/pkgconfig/ccr.pc

ctests: lib
	$(MAKE) -C c-tests BUILD=$(BUILD)

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/lib/libccr.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libccr.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libccr.so.$(ABI)
	ln -sf libccr.so.$(ABI) $(DESTDIR)$(PREFIX)/lib/libccr.so
	install -m 0644 include/ccr.h $(DESTDIR)$(PREFIX)/include/ccr.h
	install -m 0755 $(BUILD)/bin/ccr $(DESTDIR)$(PREFIX)/bin/ccr
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' ccr.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ccr.pc

clean:
	rm -rf $(BUILD)
	$(MAKE) -C c-tests clean
