/*
 * Loading transport plugins (dlopen from [daemon] transport_dir) and the
 * configured instances ([transport NAME] sections), looked up by name.
 * Runs in the daemon; instances are inherited by the workers.
 */
#ifndef TRANSPORT_H
#define TRANSPORT_H

#include <roigate/transport.h>

struct config;

struct transport_instance {
	char				*name;		/* instance name */
	const struct transport_backend	*backend;
	void				*state;
	void				*dl;		/* dlopen handle */
	int				 profile;	/* enum render_profile of its output */
};

/* Load and configure every instance; -1 with "file:line: message" in err. */
int	transport_load_all(const struct config *, struct transport_instance **out,
	    size_t *n, char *err, size_t errlen);
void	transport_free_all(struct transport_instance *, size_t n);
/* The current set (owned by the daemon). */
void	transport_set(struct transport_instance *, size_t n);
struct transport_instance *transport_find(const char *name);
const char *transport_status_name(enum transport_status);

#endif
