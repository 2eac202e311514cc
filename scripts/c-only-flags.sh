#!/bin/sh
# usage: c-only-flags.sh CXX FLAG...
# Prints the flags among FLAG... that CXX rejects as valid for C only, by
# asking the compiler, so no hand-kept list can go stale. GCC words it two
# ways: "command-line option '-X' is valid for C/ObjC but not for C++" and
# "'-Werror=' argument '-Werror=X' is not valid for C++".
cxx=$1
shift
LC_ALL=C "$cxx" -x c++ -fsyntax-only "$@" -c /dev/null -o /dev/null 2>&1 |
	sed -n -e "s/.*command-line option '\([^']*\)' is valid for C\/ObjC but not for C++.*/\1/p" \
	       -e "s/.*argument '\([^']*\)' is not valid for C++.*/\1/p" |
	sort -u | tr '\n' ' '
