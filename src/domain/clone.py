"""The ``clone`` instruction: what the Cirrus agent's built-in clone did, as a ``/bin/sh`` script.

The agent cloned with a Git library linked into it; this worker runs the ``git`` of the instance
(host, container image or VM) with a script that reads every value from the environment, so no
value is ever pasted into shell text. Its steps follow the agent:

* ``CIRRUS_REPO_CLONE_TOKEN`` set: the URL becomes
  ``https://x-access-token:<token>@<CIRRUS_REPO_CLONE_HOST>/<CIRRUS_REPO_FULL_NAME>.git``;
* a pull request (``CIRRUS_PR`` set): ``git init``, fetch ``refs/pull/<n>/head`` (or ``/merge``
  with ``CIRRUS_RESOLUTION_STRATEGY=MERGE_FOR_PRS``, one commit deeper) and check it out;
* a tag (``CIRRUS_TAG`` set): a single-branch clone of the tag; otherwise of ``CIRRUS_BRANCH``
  (the remote's default branch when empty); tags only with ``CIRRUS_CLONE_TAGS=true``;
* ``CIRRUS_CLONE_DEPTH`` > 0 limits the depth; then a hard reset to ``CIRRUS_CHANGE_IN_REPO``
  when HEAD is elsewhere (not for merge refs), and submodules with
  ``CIRRUS_CLONE_SUBMODULES=true``.
"""

from __future__ import annotations

from collections.abc import Mapping

URL_VARIABLE = "CIRRUS_REPO_CLONE_URL"
TOKEN_VARIABLE = "CIRRUS_REPO_CLONE_TOKEN"
NO_SOURCE_MESSAGE = "no source to clone: the task has no CIRRUS_REPO_CLONE_URL"

CLONE_SCRIPT = r"""
url="$CIRRUS_REPO_CLONE_URL"
if [ -n "${CIRRUS_REPO_CLONE_TOKEN+set}" ]; then
    url="https://x-access-token:${CIRRUS_REPO_CLONE_TOKEN}@${CIRRUS_REPO_CLONE_HOST}/${CIRRUS_REPO_FULL_NAME}.git"
fi
if ! command -v git >/dev/null 2>&1; then
    echo "Cannot clone: git is not installed in this instance."
    exit 1
fi
depth=0
case "${CIRRUS_CLONE_DEPTH:-}" in
    ''|*[!0-9]*) ;;
    *) depth=$CIRRUS_CLONE_DEPTH ;;
esac
[ "$depth" -gt 0 ] && echo "Limiting clone depth to $depth!"
tags=--no-tags
[ "${CIRRUS_CLONE_TAGS:-}" = true ] && tags=--tags
merge=false
if [ -n "${CIRRUS_PR+set}" ]; then
    git init --quiet .
    git remote add origin "$url"
    kind=head
    if [ "${CIRRUS_RESOLUTION_STRATEGY:-}" = MERGE_FOR_PRS ]; then
        kind=merge merge=true
        [ "$depth" -gt 0 ] && depth=$((depth + 1))
    fi
    ref="+refs/pull/$CIRRUS_PR/$kind:refs/remotes/origin/pull/$CIRRUS_PR"
    echo "Fetching $ref..."
    if [ "$depth" -gt 0 ]; then
        git fetch $tags --depth "$depth" origin "$ref"
    else
        git fetch $tags origin "$ref"
    fi
    if [ "$merge" = true ]; then
        git checkout --quiet "refs/remotes/origin/pull/$CIRRUS_PR"
    else
        git checkout --quiet "$CIRRUS_CHANGE_IN_REPO"
    fi
else
    set -- --single-branch
    if [ -n "${CIRRUS_TAG+set}" ]; then
        echo "Cloning refs/tags/$CIRRUS_TAG..."
        set -- "$@" --branch "$CIRRUS_TAG"
    elif [ -n "${CIRRUS_BRANCH:-}" ]; then
        echo "Cloning refs/heads/$CIRRUS_BRANCH..."
        set -- "$@" $tags --branch "$CIRRUS_BRANCH"
    else
        echo "Cloning the default branch..."
        set -- "$@" $tags
    fi
    [ "$depth" -gt 0 ] && set -- "$@" --depth "$depth"
    git clone "$@" "$url" .
fi
head=$(git rev-parse HEAD)
if [ "$merge" = true ]; then
    echo "\"Merge for PRs\" resolution strategy: no hard reset, the merge commit stays."
elif [ -n "${CIRRUS_CHANGE_IN_REPO:-}" ] && [ "$head" != "$CIRRUS_CHANGE_IN_REPO" ]; then
    echo "HEAD is at $head."
    echo "Hard resetting to $CIRRUS_CHANGE_IN_REPO..."
    git reset --quiet --hard "$CIRRUS_CHANGE_IN_REPO"
fi
if [ "${CIRRUS_CLONE_SUBMODULES:-}" = true ]; then
    echo "Updating submodules..."
    git submodule update --init --recursive
fi
echo "Checked out $(git rev-parse HEAD) on ${CIRRUS_BRANCH:-} branch."
echo "Successfully cloned!"
"""


def has_source(env: Mapping[str, str]) -> bool:
    """Whether the task names a repository to clone (a clone URL, or a token-built one)."""
    return bool(env.get(URL_VARIABLE)) or TOKEN_VARIABLE in env


def clone_script() -> str:
    """The ``/bin/sh -e`` script that clones into the current directory from the environment."""
    return CLONE_SCRIPT.lstrip("\n")
