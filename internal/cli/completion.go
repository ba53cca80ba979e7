package cli

import (
	"flag"
	"fmt"
	"sort"
	"strings"
)

// completeCommand is the hidden verb the completion scripts call: the shell hands it the words
// typed so far, and it prints what may come next. Keeping the logic here, not in three shell
// dialects, means the scripts never drift from the commands and flags they complete.
const completeCommand = "__complete"

// KubectlCompleteCommand is the hidden verb behind cmd/kubectl_complete-centaur: the same
// candidates as __complete, in the format kubectl reads from a plugin's completion command
// (Cobra's: a candidate per line, then ":0" to let the shell add file names or ":4" not to).
const KubectlCompleteCommand = "__kubectl_complete"

// Cobra's directives that kubectl understands: the shell's default completion (file names)
// after the candidates, or none.
const (
	cobraDefault    = ":0"
	cobraNoFileComp = ":4"
)

// filesMarker and noFilesMarker end __complete's answer: whether the shell should also offer
// file names (a workflow file, a journal, a directory) or only the candidates printed.
const (
	filesMarker   = ":files"
	noFilesMarker = ":nofiles"
)

// flagValues lists the values of the flags whose values are a closed set, by flag name.
var flagValues = map[string][]string{
	"o":      {"table", "json", "yaml"},
	"output": {"table", "json", "yaml"},
	"format": {"text", "github"},
}

// completionCommand prints a shell's completion script.
func completionCommand() command {
	c := command{
		name:    "completion",
		summary: "Print the completion script of bash, zsh or fish.",
		usage: `completion bash|zsh|fish

Prints a script that completes centaur's commands, subcommands, flags and flag values, and
file names where a command takes a file. Load it in the current shell, or install it:

  bash:  source <(centaur completion bash)        # or save it in /etc/bash_completion.d/centaur
  zsh:   source <(centaur completion zsh)         # or save it as _centaur in a directory of $fpath
  fish:  centaur completion fish > ~/.config/fish/completions/centaur.fish

The scripts call 'centaur __complete WORDS...', so they complete what this binary knows.`,
	}
	c.run = func(e *env, _ any, args []string) int {
		if len(args) != 1 {
			return e.usageError(c, "takes one shell: bash, zsh or fish")
		}
		script, ok := completionScripts[args[0]]
		if !ok {
			return e.usageError(c, fmt.Sprintf("unknown shell %q: want bash, zsh or fish", args[0]))
		}
		fmt.Fprint(e.stdout, script)
		return ExitOK
	}
	return c
}

// completeHiddenCommand is __complete: it prints the candidates for the last of its
// arguments, one per line, then filesMarker or noFilesMarker.
func completeHiddenCommand() command {
	return hiddenCompletion(completeCommand, "centaur", filesMarker, noFilesMarker)
}

// kubectlCompleteHiddenCommand is __kubectl_complete: __complete for kubectl's plugin
// completion, ending with Cobra's directives instead of the markers.
func kubectlCompleteHiddenCommand() command {
	return hiddenCompletion(KubectlCompleteCommand, "kubectl centaur", cobraDefault, cobraNoFileComp)
}

// hiddenCompletion is a hidden command name that prints the candidates for the last of its
// arguments (the words typed after program), one per line, then files or noFiles as file
// names fit there or not.
func hiddenCompletion(name, program, files, noFiles string) command {
	return command{
		name:    name,
		hidden:  true,
		rawArgs: true,
		usage:   name + " WORD... (the words typed after " + program + ", the last one being completed, possibly empty)",
		run: func(e *env, _ any, args []string) int {
			candidates, fileNames := complete(args)
			for _, c := range candidates {
				fmt.Fprintln(e.stdout, c)
			}
			if fileNames {
				fmt.Fprintln(e.stdout, files)
			} else {
				fmt.Fprintln(e.stdout, noFiles)
			}
			return ExitOK
		},
	}
}

// complete returns what may replace the last of words (the words after the program's name),
// and whether file names fit there too.
func complete(words []string) (candidates []string, files bool) {
	if len(words) == 0 {
		words = []string{""}
	}
	current := words[len(words)-1]
	if len(words) == 1 {
		return withPrefix(visibleCommandNames(), current), false
	}
	c, ok := lookup(words[0])
	if !ok || c.hidden {
		return nil, false
	}
	typed := words[1 : len(words)-1]
	fs := flagSetOf(c)
	if values, ok := valuesAfterFlag(fs, typed); ok {
		return withPrefix(values, current), values == nil
	}
	if strings.HasPrefix(current, "-") {
		return withPrefix(flagNames(fs), current), false
	}
	return positionalCandidates(c, fs, typed, current)
}

// positionalCandidates completes an argument of c: a subcommand first when c has them, a
// command name for help, a shell for completion, and file names otherwise.
func positionalCandidates(c command, fs *flag.FlagSet, typed []string, current string) ([]string, bool) {
	if len(positionals(fs, typed)) > 0 {
		return nil, c.takesFiles
	}
	switch {
	case len(c.subcommands) > 0:
		return withPrefix(c.subcommands, current), false
	case c.name == "help":
		return withPrefix(visibleCommandNames(), current), false
	case c.name == "completion":
		return withPrefix(shells(), current), false
	}
	return nil, c.takesFiles
}

// flagSetOf returns c's flags, bound on a throwaway flag set.
func flagSetOf(c command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	return fs
}

// valuesAfterFlag reports whether the word being completed is the value of the flag just
// typed (`-o <TAB>`), and if so its closed set of values (nil: any value, such as a file).
func valuesAfterFlag(fs *flag.FlagSet, typed []string) ([]string, bool) {
	if len(typed) == 0 {
		return nil, false
	}
	name, ok := flagName(typed[len(typed)-1])
	if !ok || strings.Contains(name, "=") {
		return nil, false
	}
	f := fs.Lookup(name)
	if f == nil || isBool(f) {
		return nil, false
	}
	return flagValues[name], true
}

// positionals returns the arguments among typed, skipping flags and their values.
func positionals(fs *flag.FlagSet, typed []string) []string {
	var args []string
	for i := 0; i < len(typed); i++ {
		name, ok := flagName(typed[i])
		switch {
		case typed[i] == "--":
			return append(args, typed[i+1:]...)
		case !ok:
			args = append(args, typed[i])
		case !strings.Contains(name, "="):
			if f := fs.Lookup(name); f != nil && !isBool(f) {
				i++ // the flag's value
			}
		}
	}
	return args
}

// flagName returns the name of the flag word w (-o, --api-url, --input=...), without dashes.
func flagName(w string) (string, bool) {
	if len(w) < 2 || w[0] != '-' || w == "--" {
		return "", false
	}
	return strings.TrimLeft(w, "-"), true
}

// isBool reports whether f takes no value, as the flag package decides it.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// flagNames lists fs's flags as they are typed: -o for one letter, --name otherwise.
func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) == 1 {
			names = append(names, "-"+f.Name)
		} else {
			names = append(names, "--"+f.Name)
		}
	})
	names = append(names, "--help")
	sort.Strings(names)
	return names
}

// visibleCommandNames lists the commands help shows.
func visibleCommandNames() []string {
	var names []string
	for _, c := range commands() {
		if !c.hidden {
			names = append(names, c.name)
		}
	}
	return names
}

// withPrefix keeps the words that start with prefix.
func withPrefix(words []string, prefix string) []string {
	var kept []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			kept = append(kept, w)
		}
	}
	return kept
}

// shells lists the shells completion prints a script for.
func shells() []string {
	names := make([]string, 0, len(completionScripts))
	for name := range completionScripts {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// completionScripts holds each shell's script. Each passes the words typed so far to
// `centaur __complete`, offers the lines it prints, and offers file names when the last line
// says so.
var completionScripts = map[string]string{
	"bash": `# bash completion for centaur; load with: source <(centaur completion bash)
_centaur() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local IFS=$'\n'
    local lines
    lines=($(centaur __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)) || return 0
    local n=${#lines[@]}
    [ "$n" -gt 0 ] || return 0
    local marker=${lines[n-1]}
    COMPREPLY=("${lines[@]:0:n-1}")
    if [ "$marker" = ":files" ]; then
        COMPREPLY+=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
    fi
    return 0
}
complete -F _centaur centaur
`,
	"zsh": `#compdef centaur
# zsh completion for centaur; load with: source <(centaur completion zsh)
_centaur() {
    local -a lines candidates
    lines=("${(@f)$(centaur __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    candidates=("${(@)lines[1,-2]}")
    if (( ${#candidates} )); then
        compadd -- "${candidates[@]}"
    fi
    if [[ ${lines[-1]} == ":files" ]]; then
        _files
    fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _centaur "$@"
else
    compdef _centaur centaur
fi
`,
	"fish": `# fish completion for centaur; save as ~/.config/fish/completions/centaur.fish
function __centaur_complete
    set -l words (commandline -opc)
    set -e words[1]
    set -l lines (centaur __complete $words (commandline -ct) 2>/dev/null)
    set -l n (count $lines)
    test $n -gt 0; or return
    if test $n -gt 1
        printf '%s\n' $lines[1..-2]
    end
    if test "$lines[-1]" = ":files"
        __fish_complete_path (commandline -ct)
    end
end
complete -c centaur -f -a '(__centaur_complete)'
`,
}
