/*
 * roigate-render: render a packet folder into the PDF roigated would send,
 * without the daemon: for an administrator trying a cover sheet template,
 * a clerk checking redactions before approval, and the benchmarks.
 * Exit codes follow sysexits(3).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "manifest.h"
#include "ocr.h"
#include "render.h"
#include "sandbox.h"
#include "util.h"

static void __attribute__((noreturn))
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: roigate-render [-p fax|document] [-r DPI|204x196] [-P letter|a4]\n"
	    "                      [--color] [-t TEMPLATE] [-o OUTPUT] PACKET_DIR\n"
	    "\n"
	    "Renders the packet in PACKET_DIR (manifest.json and its documents) into\n"
	    "one PDF: the cover sheet, then every page re-rendered with the manifest's\n"
	    "redactions burned in.  The output goes into PACKET_DIR as OUTPUT (default\n"
	    "preview.pdf).  Prints the page count, the output's SHA-256 and every\n"
	    "redaction applied (document, page, box, pattern).\n"
	    "\n"
	    "  -p PROFILE   fax (1-bit CCITT G4) or document (JPEG); default document\n"
	    "  -r RES       dots per inch (document 150-300; fax 200 or 204x196)\n"
	    "  -P PAPER     letter (default) or a4\n"
	    "  --color      document profile in color instead of gray\n"
	    "  -t TEMPLATE  cover sheet template file (default %s/default.tpl)\n"
	    "  --org NAME   organization shown on the cover sheet\n"
	    "  --to NAME    recipient shown on the cover sheet\n"
	    "  --to-address ADDRESS   recipient's fax number or address\n"
	    "  --org-address TEXT, --org-phone TEXT, --org-fax TEXT, --logo PNG\n"
	    "               the sender's details on the cover sheet\n"
	    "  --time SECONDS   the cover sheet's date (seconds since 1970; default now)\n"
	    "  --timeout SECONDS  give up on the packet after this long (default 300)\n"
	    "  --max-memory MB    memory the reader may hold (default 512)\n"
	    "  --ocr patterns|all|off  pages read by OCR too (default: pages of\n"
	    "               documents with patterns)\n"
	    "  --ocr-dpi DPI      the raster OCR reads (default 300)\n"
	    "  --verify ocr|off   read the output back before it is done (default ocr)\n"
	    "  --protect LIST     named patterns on every document: ssn, phone, email,\n"
	    "               mrn, dob, patient_name (the packet's patient)\n"
	    "  --quantum PT       box widths a multiple of PT points (default 72; 0 exact)\n",
	    TEMPLATE_DIR);
	exit(code);
}

/* The OCR and box options, kept until the profile's defaults are set. */
struct ocr_args {
	int		 ocr, dpi, verify, quantum;
	const char	*protect;
};

/* --protect takes what [render] protect takes (src/config.c). */
static void
protect_check(const char *list)
{
	static const char *const named[] = { "ssn", "phone", "email", "mrn",
	    "dob", "patient_name" };
	char	*l = xstrdup(list), *save = NULL, *name;

	for (name = strtok_r(l, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
		size_t i;

		for (i = 0; i < sizeof(named) / sizeof(named[0]); i++)
			if (strcmp(name, named[i]) == 0)
				break;
		if (i == sizeof(named) / sizeof(named[0])) {
			fprintf(stderr, "roigate-render: --protect: \"%.40s\" is not "
			    "ssn, phone, email, mrn, dob or patient_name\n", name);
			exit(EX_USAGE);
		}
	}
	free(l);
}

static void
ocr_option(int ch, const char *arg, struct ocr_args *a)
{
	if (ch == 'Q' && (a->ocr = strcmp(arg, "patterns") == 0 ? RENDER_OCR_PATTERNS :
	    strcmp(arg, "all") == 0 ? RENDER_OCR_ALL :
	    strcmp(arg, "off") == 0 ? RENDER_OCR_OFF : -2) == -2)
		usage(EX_USAGE);
	if (ch == 'V' && (a->verify = strcmp(arg, "ocr") == 0 ? 1 :
	    strcmp(arg, "off") == 0 ? 0 : -2) == -2)
		usage(EX_USAGE);
	if (ch == 'R' && ((a->dpi = atoi(arg)) < 50 || a->dpi > 600))
		usage(EX_USAGE);
	if (ch == 'U' && ((a->quantum = atoi(arg)) < 0 || a->quantum > 612))
		usage(EX_USAGE);
	if (ch == 'S') {
		protect_check(arg);
		a->protect = arg;
	}
}

static void
ocr_apply(const struct ocr_args *a, struct render_opts *o)
{
	if (a->ocr >= 0)
		o->ocr = (enum render_ocr)a->ocr;
	if (a->verify >= 0)
		o->verify = a->verify;
	if (a->dpi > 0)
		o->ocr_dpi = a->dpi;
	if (a->quantum >= 0)
		o->redact_quantum = a->quantum;
	o->protect = a->protect;
}

static int
parse_res(const char *s, struct render_opts *o)
{
	char	*end;
	long	 x, y;

	x = strtol(s, &end, 10);
	y = x;
	if (*end == 'x')
		y = strtol(end + 1, &end, 10);
	if (*end || x < 72 || x > 600 || y < 72 || y > 600)
		return -1;
	o->xdpi = (int)x;
	o->ydpi = (int)y;
	return 0;
}

/*
 * --sandbox: the renderer's sandbox around this process, as the worker's
 * renderer has it (for the benchmarks and for trying a document).  A
 * forbidden system call ends it with exit status 99 and nothing printed.
 */
static int
render_sandboxed(const struct manifest *mf, int dirfd, const char *out,
    const struct render_opts *o, const struct render_cover *c,
    struct render_result *res)
{
	struct sandbox_limits	 l;
	struct sandbox_state	 ss;
	const char		*paths[4];
	int			*docfds = xcalloc(mf->ndocs + 1, sizeof(*docfds));
	struct rusage		 ru;
	int			 outfd, rv, errfd, null;

	memset(res, 0, sizeof(*res));
	if (render_prepare(o, c, res->err, sizeof(res->err)) == -1 ||
	    render_open_inputs(mf, dirfd, out, docfds, &outfd, res) == -1) {
		free(docfds);
		return -1;
	}
	render_sandbox_paths(o, c, paths, 4);
	render_sandbox_limits(o, 64 + (int)mf->ndocs * 2, &l);
	/* Tesseract's chatter goes where the sandbox's renderer sends it. */
	ocr_sandboxed();
	fflush(stderr);
	if ((errfd = dup(STDERR_FILENO)) != -1 &&
	    (null = open("/dev/null", O_WRONLY | O_CLOEXEC)) != -1) {
		dup2(null, STDERR_FILENO);
		close(null);
	}
	if (sandbox_enter_parser(&l, paths, -1, &ss, res->err,
	    sizeof(res->err)) == -1) {
		render_close_inputs(mf, docfds, &outfd);
		free(docfds);
		return -1;
	}
	rv = render_packet_fds(mf, docfds, outfd, o, c, res);
	if (rv == 0)
		(void)fsync(dirfd);
	if (errfd != -1)
		dup2(errfd, STDERR_FILENO);
	getrusage(RUSAGE_SELF, &ru);
	printf("sandbox landlock %d%s seccomp %s mapped %lld MB limit %lld MB "
	    "peak-rss %ld MB\n", ss.landlock_abi, ss.landlock ? " in force" : "",
	    ss.seccomp ? "on" : "off", (long long)(ss.mapped >> 20),
	    (long long)(ss.as_limit >> 20), ru.ru_maxrss / 1024);
	render_close_inputs(mf, docfds, &outfd);
	free(docfds);
	return rv;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "color", no_argument, NULL, 'C' },
		{ "org", required_argument, NULL, 'O' },
		{ "to", required_argument, NULL, 'T' },
		{ "to-address", required_argument, NULL, 'A' },
		{ "org-address", required_argument, NULL, 'D' },
		{ "org-phone", required_argument, NULL, 'H' },
		{ "org-fax", required_argument, NULL, 'F' },
		{ "logo", required_argument, NULL, 'L' },
		{ "time", required_argument, NULL, 'W' },
		{ "timeout", required_argument, NULL, 'X' },
		{ "max-memory", required_argument, NULL, 'M' },
		{ "ocr", required_argument, NULL, 'Q' },
		{ "ocr-dpi", required_argument, NULL, 'R' },
		{ "verify", required_argument, NULL, 'V' },
		{ "protect", required_argument, NULL, 'S' },
		{ "quantum", required_argument, NULL, 'U' },
		{ "sandbox", no_argument, NULL, 'Z' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct render_opts	 o;
	struct render_cover	 c;
	struct render_result	 res;
	struct manifest		*mf;
	struct errlist		 errs = { NULL, 0 };
	struct buf		 b;
	const char		*profile = "document", *res_arg = NULL, *paper = "letter";
	const char		*out = "preview.pdf";
	char			 tpl[4096];
	int			 ch, color = 0, dirfd, fd, timeout = -1, sandbox = 0;
	long			 max_mb = -1;
	struct ocr_args		 oa = { -1, 0, -1, -1, NULL };

	memset(&c, 0, sizeof(c));
	snprintf(tpl, sizeof(tpl), "%s/default.tpl", TEMPLATE_DIR);
	c.org_name = "Health Information Management";
	c.to_name = "(recipient)";
	c.to_address = "";
	while ((ch = getopt_long(argc, argv, "p:r:P:t:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': profile = optarg; break;
		case 'r': res_arg = optarg; break;
		case 'P': paper = optarg; break;
		case 't': strlcpy_(tpl, optarg, sizeof(tpl)); break;
		case 'o': out = optarg; break;
		case 'C': color = 1; break;
		case 'O': c.org_name = optarg; break;
		case 'T': c.to_name = optarg; break;
		case 'A': c.to_address = optarg; break;
		case 'D': c.org_address = optarg; break;
		case 'H': c.org_phone = optarg; break;
		case 'F': c.org_fax = optarg; break;
		case 'L': c.logo = optarg; break;
		case 'W': c.now = strtoll(optarg, NULL, 10); break;
		case 'X': timeout = atoi(optarg); break;
		case 'M': max_mb = atol(optarg); break;
		case 'Q': case 'R': case 'V': case 'S': case 'U':
			ocr_option(ch, optarg, &oa);
			break;
		case 'Z': sandbox = 1; break;
		case 'h': usage(0);
		default: usage(EX_USAGE);
		}
	}
	if (argc - optind != 1 || strchr(out, '/') || out[0] == '.')
		usage(EX_USAGE);
	if (strcmp(profile, "fax") == 0)
		render_defaults(&o, RENDER_FAX);
	else if (strcmp(profile, "document") == 0)
		render_defaults(&o, RENDER_DOCUMENT);
	else
		usage(EX_USAGE);
	if (strcmp(paper, "a4") == 0) {
		o.paper_w = 595;
		o.paper_h = 842;
	} else if (strcmp(paper, "letter") != 0)
		usage(EX_USAGE);
	if (res_arg && parse_res(res_arg, &o) == -1)
		usage(EX_USAGE);
	o.color = color;
	ocr_apply(&oa, &o);
	if (timeout > 0)
		o.time_limit = timeout;
	if (max_mb > 0)
		o.max_memory = (int64_t)max_mb << 20;
	c.template_path = tpl;
	if (c.now == 0)
		c.now = time(NULL);

	if ((dirfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "roigate-render: %s: %s\n", argv[optind], strerror(errno));
		return EX_NOINPUT;
	}
	buf_init(&b);
	if ((fd = openat(dirfd, "manifest.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    read_file_fd(fd, MANIFEST_MAX_SIZE, &b) == -1) {
		fprintf(stderr, "roigate-render: %s/manifest.json: %s\n", argv[optind],
		    strerror(errno));
		return EX_NOINPUT;
	}
	close(fd);
	if ((mf = manifest_parse(buf_cstr(&b), b.len, &errs)) == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "roigate-render: manifest.json: %s\n", errs.msg[i]);
		errlist_free(&errs);
		buf_free(&b);
		return EX_DATAERR;
	}
	buf_free(&b);
	c.to_organization = mf->requester_organization;
	if ((sandbox ? render_sandboxed(mf, dirfd, out, &o, &c, &res) :
	    render_packet(mf, dirfd, out, &o, &c, &res)) == -1) {
		fprintf(stderr, "roigate-render: %s\n", res.err);
		render_result_free(&res);
		manifest_free(mf);
		close(dirfd);
		return res.tempfail ? EX_IOERR : EX_DATAERR;
	}
	printf("pages %d\nsha256 %s\n", res.pages, res.sha256);
	printf("gate [%s]\n", res.gate);
	for (size_t i = 0; i < res.nred; i++)
		printf("redaction document %d page %d box %.1f %.1f %.1f %.1f %s\n",
		    res.red[i].doc, res.red[i].page, res.red[i].x, res.red[i].y,
		    res.red[i].w, res.red[i].h, res.red[i].pattern);
	render_result_free(&res);
	manifest_free(mf);
	close(dirfd);
	return 0;
}
