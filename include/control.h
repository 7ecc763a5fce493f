/*
 * The control socket: accepts clients, identifies them with SO_PEERCRED,
 * maps them to roles, runs their requests and writes every request to the
 * audit log.  Runs in the daemon.
 */
#ifndef CONTROL_H
#define CONTROL_H

int	control_init(void);	/* bind and listen; -1 on error */
void	control_stop(void);	/* close the listener and every client */
void	control_reconfigure(void);

#endif
