#!/usr/bin/env bash
# The action's run step: `envgate COMMAND ARGS --format github` (annotations
# on the changed lines, the Markdown report appended to the step summary),
# SARIF when asked; the exit code is an output and the step's result.
set -uo pipefail
: "${ENVGATE_ROOT:?}" "${GITHUB_OUTPUT:?}"
export PATH="$ENVGATE_ROOT/bin:$PATH"
command="${INPUT_COMMAND:-validate}"
case "$command" in
  validate|check) ;;
  *) echo "::error title=envgate::command must be validate or check, not '$command'"; exit 2 ;;
esac
# Word-split the arguments as a shell would, without evaluating anything.
read -r -a args <<< "${INPUT_ARGS:-}"
reports=()
if [ -n "${INPUT_SARIF:-}" ]; then
  reports=(--report "sarif=$INPUT_SARIF")
  echo "sarif=$INPUT_SARIF" >> "$GITHUB_OUTPUT"
fi
envgate "$command" "${args[@]}" --format github "${reports[@]}"
code=$?
echo "exit-code=$code" >> "$GITHUB_OUTPUT"
exit "$code"
