# bash completion for roictl(1), the roigate control client.
# Installed to /usr/share/bash-completion/completions/roictl.
#
# Commands and options are listed here; tests/integration/test_completion.py
# checks them against src/roictl.c, so a new command or option fails the
# test until it is added.  Job and recipient ids are asked of the daemon
# (`roictl --json list`, `roictl --json recipient list`) with the socket
# given on the command line, if any; a daemon that does not answer, or a
# caller without the role, simply gets no ids.

_roictl_commands="status list show hold release retry cancel watch submit log verify-log audit prune recipient shape alerts metrics accounting report requests incident"
_roictl_states="queued rendering sending awaiting_confirmation deferred held delivered failed cancelled"

# roictl with the socket the user typed (-s/--socket), JSON output.
_roictl_ask()
{
	local i sock=()
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		case ${COMP_WORDS[i]} in
		-s | --socket) sock=(--socket "${COMP_WORDS[i + 1]}") ;;
		--socket=*) sock=(--socket "${COMP_WORDS[i]#--socket=}") ;;
		esac
	done
	timeout 3 "${COMP_WORDS[0]:-roictl}" "${sock[@]}" --json "$@" 2>/dev/null
}

_roictl_jobs()
{
	_roictl_ask list --limit 200 | sed -n 's/.*[{,]"id":\([0-9][0-9]*\)[,}].*/\1/p'
}

_roictl_recipients()
{
	_roictl_ask recipient list | sed -n 's/.*[{,]"id":"\([^"]*\)".*/\1/p'
}

_roictl()
{
	local cur prev cmd sub i n
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}

	# The command: the first word that is neither an option nor its value.
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-s | --socket) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; n=$i; break ;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		-s | --socket)
			COMPREPLY=($(compgen -f -- "$cur"))
			return
			;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-s --socket -j --json -h --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_roictl_commands" -- "$cur"))
		fi
		return
	fi

	case $cmd in
	status | shape | alerts | metrics)
		COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
		;;
	verify-log)
		case $prev in
		--key-file) COMPREPLY=($(compgen -f -- "$cur")) ;;
		--checkpoint) ;;
		*) COMPREPLY=($(compgen -W "--key-file --checkpoint --json --help" -- "$cur")) ;;
		esac
		;;
	accounting)
		if ((COMP_CWORD == n + 1)) && [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W "suspend" -- "$cur"))
		elif [[ ${COMP_WORDS[n + 1]} == suspend ]]; then
			COMPREPLY=($(compgen -W "--agency --until --oral --mrn --note --list --end --json --help" -- "$cur"))
		else
			case $prev in
			--format) COMPREPLY=($(compgen -W "text json pdf" -- "$cur")) ;;
			-o | --output) COMPREPLY=($(compgen -f -- "$cur")) ;;
			--mrn | --from | --to | --generated) ;;
			*) COMPREPLY=($(compgen -W "--mrn --from --to --format --generated --output -o --json --help" -- "$cur")) ;;
			esac
		fi
		;;
	report)
		if ((COMP_CWORD == n + 1)) && [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W "daily" -- "$cur"))
		elif [[ ${COMP_WORDS[n + 1]} == daily ]]; then
			case $prev in
			--format) COMPREPLY=($(compgen -W "text json pdf" -- "$cur")) ;;
			-o | --output) COMPREPLY=($(compgen -f -- "$cur")) ;;
			--date | --generated) ;;
			*) COMPREPLY=($(compgen -W "--date --format --generated --output -o --json --help" -- "$cur")) ;;
			esac
		fi
		;;
	requests)
		if ((COMP_CWORD == n + 1)) && [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W "extend" -- "$cur"))
		elif [[ ${COMP_WORDS[n + 1]} == extend ]]; then
			case $prev in
			--reason) ;;
			*) [[ $cur == -* ]] && COMPREPLY=($(compgen -W "--reason --json --help" -- "$cur")) ;;
			esac
		else
			case $prev in
			--due-within) ;;
			*) COMPREPLY=($(compgen -W "--overdue --due-within --json --help" -- "$cur")) ;;
			esac
		fi
		;;
	incident)
		if ((COMP_CWORD == n + 1)) && [[ $cur != -* ]]; then
			COMPREPLY=($(compgen -W "open assess list show report" -- "$cur"))
		else
			case $prev in
			--job) COMPREPLY=($(compgen -W "$(_roictl_jobs)" -- "$cur")) ;;
			--kind) COMPREPLY=($(compgen -W "misdirected wrong_patient wrong_documents exposed other" -- "$cur")) ;;
			--determination) COMPREPLY=($(compgen -W "low_probability breach" -- "$cur")) ;;
			--format) COMPREPLY=($(compgen -W "text json pdf" -- "$cur")) ;;
			--output | -o) COMPREPLY=($(compgen -f -- "$cur")) ;;
			--note | --nature | --person | --acquired | --mitigation | --discovered | --generated) ;;
			*) COMPREPLY=($(compgen -W "--job --kind --note --discovered --determination --nature --person --acquired --mitigation --format --generated --output -o --json --help" -- "$cur")) ;;
			esac
		fi
		;;
	list)
		case $prev in
		--state) COMPREPLY=($(compgen -W "$_roictl_states" -- "$cur")) ;;
		--transport | --limit) ;;
		*) COMPREPLY=($(compgen -W "--state --transport --limit --json --help" -- "$cur")) ;;
		esac
		;;
	show | hold | release | retry | cancel)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
		elif [[ $cmd != show || $COMP_CWORD -eq $((n + 1)) ]]; then
			COMPREPLY=($(compgen -W "$(_roictl_jobs)" -- "$cur"))
		fi
		;;
	watch)
		case $prev in
		-n | --interval) ;;
		*) COMPREPLY=($(compgen -W "-n --interval --help" -- "$cur")) ;;
		esac
		;;
	submit)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--json --help" -- "$cur"))
		else
			COMPREPLY=($(compgen -d -- "$cur"))
		fi
		;;
	log)
		case $prev in
		--job) COMPREPLY=($(compgen -W "$(_roictl_jobs)" -- "$cur")) ;;
		--recipient) COMPREPLY=($(compgen -W "$(_roictl_recipients)" -- "$cur")) ;;
		--mrn | --since | --until) ;;
		*) COMPREPLY=($(compgen -W "--mrn --recipient --since --until --job --json --help" -- "$cur")) ;;
		esac
		;;
	audit)
		case $prev in
		--since | --limit) ;;
		*) COMPREPLY=($(compgen -W "--since --limit --json --help" -- "$cur")) ;;
		esac
		;;
	prune)
		COMPREPLY=($(compgen -W "--dry-run --json --help" -- "$cur"))
		;;
	recipient)
		sub=${COMP_WORDS[n + 1]}
		if ((COMP_CWORD == n + 1)); then
			COMPREPLY=($(compgen -W "add list show disable verify" -- "$cur"))
			return
		fi
		case $sub in
		add)
			case $prev in
			--name | --organization | --address | --param) ;;
			--transport) ;;
			*)
				if [[ $cur == -* ]]; then
					COMPREPLY=($(compgen -W "--name --organization --transport --address --param --help" -- "$cur"))
				fi
				;;
			esac
			;;
		show | disable)
			((COMP_CWORD == n + 2)) &&
				COMPREPLY=($(compgen -W "$(_roictl_recipients)" -- "$cur"))
			;;
		verify)
			case $prev in
			--expect) ;;
			*)
				if [[ $cur == -* ]]; then
					COMPREPLY=($(compgen -W "-y --yes --expect --help" -- "$cur"))
				elif ((COMP_CWORD == n + 2)); then
					COMPREPLY=($(compgen -W "$(_roictl_recipients)" -- "$cur"))
				fi
				;;
			esac
			;;
		esac
		;;
	esac
}
complete -F _roictl roictl
