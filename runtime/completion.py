"""``netctl completion bash|zsh``: shell completion scripts generated from the parser (pure).

The script holds, for every command path ("", "network", "network create", ...), its
sub-verbs and options; the shell function walks the words typed so far to find the path.
Values of ``--network``/``--net`` complete with the networks netctl knows (asking netctl
at completion time). zsh uses the same function through ``bashcompinit``.
"""

from __future__ import annotations

import argparse

#: options whose value is a network name
_NETWORK_OPTS = ("--network", "--net")


def _table(parser: argparse.ArgumentParser, path: str = "") -> dict[str, list[str]]:
    words: list[str] = []
    out: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name.startswith("_"):
                    continue  # internal helpers netctl starts itself
                words.append(name)
                out.update(_table(sub, f"{path} {name}".strip()))
        else:
            words.extend(o for o in action.option_strings if o.startswith("--") or len(action.option_strings) == 1)
    out[path] = words
    return out


def _takes_value(parser: argparse.ArgumentParser) -> list[str]:
    """Every option (of any verb) that is followed by a value."""
    seen: set[str] = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif action.option_strings and action.nargs != 0:
                seen.update(action.option_strings)
    return sorted(seen)


def bash(parser: argparse.ArgumentParser) -> str:
    """A bash completion script for ``parser`` (``source <(netctl completion bash)``)."""
    table = _table(parser)
    cases = "\n".join(f'    "{path}") words="{" ".join(words)}" ;;' for path, words in sorted(table.items()))
    paths = " ".join(f'"{p}"' for p in sorted(table) if p)
    return f'''# netctl completion for bash: source <(netctl completion bash)
_netctl() {{
  local cur prev path w i words
  local -a known=({paths})
  local valued=" {" ".join(_takes_value(parser))} "
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    [[ "$w" == "--" ]] && return 0          # the container's command: leave it to the user
    if [[ "$w" == -* ]]; then
      continue
    fi
    [[ "$valued" == *" ${{COMP_WORDS[i-1]}} "* && "${{COMP_WORDS[i-1]}}" == -* ]] && continue
    local next="${{path:+$path }}$w"
    local k
    for k in "${{known[@]}}"; do
      if [[ "$k" == "$next" ]]; then path="$next"; break; fi
    done
  done
  if [[ " {" ".join(_NETWORK_OPTS)} " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -W "$(netctl ls --no-status --format '{{{{.Name}}}}' 2>/dev/null) host none" -- "$cur"))
    return 0
  fi
  case "$path" in
{cases}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -F _netctl netctl
'''


def zsh(parser: argparse.ArgumentParser) -> str:
    """A zsh completion script (``source <(netctl completion zsh)``): the bash one through
    zsh's ``bashcompinit``."""
    return ("# netctl completion for zsh: source <(netctl completion zsh)\n"
            "autoload -U +X compinit && compinit\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash(parser).split("\n", 1)[1])
