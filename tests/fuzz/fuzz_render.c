/*
 * libFuzzer target for the document pipeline: the first byte picks the
 * type (PDF, PNG, JPEG, TIFF, text), the rest is the document.  It is
 * probed as intake would (render_probe_here) and, if that passes, rendered
 * with a rectangle and text patterns to redact, as the worker would.  A
 * failure with a reason is fine; a crash, a leak or undefined behaviour is
 * not.  Run by `make fuzz` and, for a bounded time, by `make check`.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "manifest.h"
#include "render.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	dir[64];
static char	tpl[128];
static int	dirfd_ = -1;

static void
setup(void)
{
	FILE	*f;

	snprintf(dir, sizeof(dir), "/tmp/roigate-fuzz.XXXXXX");
	if (mkdtemp(dir) == NULL || (dirfd_ = open(dir, O_RDONLY | O_DIRECTORY)) == -1)
		abort();
	snprintf(tpl, sizeof(tpl), "%s/cover.tpl", dir);
	if ((f = fopen(tpl, "w")) == NULL)
		abort();
	fputs("text 54 72 12 regular {org_name} {pages} {packet_id}\n"
	    "if note\nwrap 54 100 400 10 regular {note}\nend\n", f);
	fclose(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "d.pdf", "d.png", "d.jpg", "d.tif",
	    "d.txt" };
	struct redact_rect	 rect = { 1, 10, 10, 100, 20 };
	struct redact_pattern	 pats[] = {
		{ (char *)"ssn", NULL, -1 },
		{ (char *)"patient_name", NULL, -1 },
		{ NULL, (char *)"[0-9]{4}", -1 },
	};
	struct document		 doc;
	struct manifest		 mf;
	struct render_opts	 o;
	struct render_cover	 c;
	struct render_result	 res;
	const char		*name;
	char			 err[512];
	int			 fd;

	if (dirfd_ == -1)
		setup();
	if (size < 1 || size > 1 << 20)
		return 0;
	name = names[data[0] % 5];
	unlinkat(dirfd_, name, 0);
	if ((fd = openat(dirfd_, name, O_RDWR | O_CREAT | O_TRUNC, 0600)) == -1)
		abort();
	if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
		abort();

	render_defaults(&o, data[0] & 0x80 ? RENDER_FAX : RENDER_DOCUMENT);
	o.xdpi = o.ydpi = 72;		/* cheap pages: the parsing is what matters */
	o.max_pages = 8;
	o.max_memory = (int64_t)256 << 20;
	o.max_pixels = 20 * 1000 * 1000;
	o.time_limit = 5;
	if (render_probe_here(fd, name, &o, err, sizeof(err)) == -1) {
		close(fd);
		return 0;
	}
	close(fd);

	memset(&doc, 0, sizeof(doc));
	doc.file = (char *)name;
	doc.rects = &rect;
	doc.nrects = 1;
	doc.patterns = pats;
	doc.npatterns = sizeof(pats) / sizeof(pats[0]);
	memset(&mf, 0, sizeof(mf));
	mf.packet_id = (char *)"ROI-FUZZ-1";
	mf.patient_name = (char *)"Zoë Testpatient";
	mf.patient_mrn = (char *)"TEST-000123";
	mf.patient_dob = (char *)"1984-03-09";
	mf.cover_note = (char *)"fuzz";
	mf.docs = &doc;
	mf.ndocs = 1;
	memset(&c, 0, sizeof(c));
	c.template_path = tpl;
	c.org_name = "Fuzz Hospital";
	c.now = 1795000000;
	render_packet(&mf, dirfd_, "out.pdf", &o, &c, &res);
	render_result_free(&res);
	return 0;
}
