#!/usr/bin/env bash
# Build data/corpus/corpus.txt.gz, the public-domain training corpus of the `ml` crate, from two
# Debian packages (see data/corpus/README.md for the sources, their licences and the expected
# digests):
#   - jargon-text               The Jargon File 4.4.7 (public domain)
#   - bible-kjv, bible-kjv-text The King James Version of the Bible (public domain)
#
#   bash scripts/corpus/make_corpus.sh [OUT.txt.gz]      # default: data/corpus/corpus.txt.gz
#
# Installs the packages itself with apt-get (as root, or through sudo). Reproducible: the same
# package versions give the same bytes on every run (C locale, no timestamps, `gzip -n`). It
# prints the sha256 of the text and of the .gz, and warns when they differ from the values that
# data/corpus/README.md records.
#
# Cleaning (in order): strict UTF-8 decoding (a bad byte is an error), CR LF / CR -> LF, tabs
# expanded to spaces, NO-BREAK SPACE -> space, every other control or format character
# (Unicode Cc/Cf, except LF) dropped, trailing whitespace removed, then every run of blank lines
# collapsed into one blank line, so that paragraphs are separated by exactly one blank line. The
# file ends with a single LF.
#
# Layout: the Jargon File (its lines un-indented by the 3 spaces of its plain-text rendering,
# otherwise as Debian ships it, hard-wrapped), then the Bible: a title paragraph, and per chapter
# a heading paragraph ("Genesis 1") followed by one paragraph holding that chapter's verses, one
# verse a line, each opening with its number ("1 In the beginning God created ...").
set -euo pipefail
export LC_ALL=C.UTF-8 TZ=UTC

EXPECT_TXT_SHA256="8c2b0b4cdaac80ff235a6d4dc5dd47698fcd0e2163210b247eb8759458d9680b"
EXPECT_GZ_SHA256="65d5d56c9dbbe76a2b7b42da43cfc684f22aa95889a47efd8715de392870928d"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/data/corpus/corpus.txt.gz}"

pkgs=(jargon-text bible-kjv bible-kjv-text)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
for p in "${pkgs[@]}"; do
  echo "make_corpus: $p $(dpkg-query -W -f='${Version}' "$p")" >&2
done

jargon_gz=/usr/share/doc/jargon-text/jargon.txt.gz
[ -r "$jargon_gz" ] || { echo "make_corpus: $jargon_gz not found" >&2; exit 1; }
command -v bible >/dev/null || { echo "make_corpus: the 'bible' program (bible-kjv) is not on PATH" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. The Jargon File, as shipped; drop the 3-space indentation of its text rendering.
gzip -dc "$jargon_gz" | perl -pe 's/^ {1,3}//' >"$work/jargon.txt"

# 2. The whole KJV, pretty-printed (book/chapter headings), one verse a line (-l: no wrapping).
#    `bible` prints "\nGenesis 1\n\n  1 In the beginning ...\n  2 ...": keep the headings as their
#    own paragraphs and the verses of a chapter as one paragraph.
bible -l 1000000 'Gen1:1-Rev22:21' </dev/null >"$work/kjv_raw.txt"
verses="$(grep -c '^  [0-9]' "$work/kjv_raw.txt" || true)"
[ "$verses" -eq 31102 ] || { echo "make_corpus: expected 31102 verses from bible, got $verses" >&2; exit 1; }
{
  printf 'The Holy Bible, King James Version (1611, Authorized Version)\n\n'
  perl -ne '
    chomp;
    if (/^\s*$/) { next }
    elsif (/^  (\d+) (.*)$/) { print "$1 $2\n" }
    else { print "\n" if $. > 2; print "$_\n\n" }
  ' "$work/kjv_raw.txt"
} >"$work/kjv.txt"

# 3. Concatenate and clean.
{
  cat "$work/jargon.txt"
  printf '\n\n'
  cat "$work/kjv.txt"
} | perl -e '
  use strict; use warnings;
  use Encode qw(decode encode FB_CROAK);
  local $/; my $raw = <STDIN>;
  my $t = decode("UTF-8", $raw, FB_CROAK);
  $t =~ s/\r\n?/\n/g;
  1 while $t =~ s/^([^\t\n]*)\t/$1 . (" " x (8 - length($1) % 8))/me;
  $t =~ s/\x{A0}/ /g;
  $t =~ s/[^\n\P{Cc}]//g;   # control characters but LF
  $t =~ s/\p{Cf}//g;        # format characters (BOM, zero-width, ...)
  $t =~ s/[ \t]+$//mg;      # trailing whitespace
  $t =~ s/\A\n+//;          # no leading blank lines
  $t =~ s/\n{3,}/\n\n/g;    # runs of blank lines -> one blank line
  $t =~ s/\n*\z/\n/;        # exactly one final LF
  binmode STDOUT; print encode("UTF-8", $t, FB_CROAK);
' >"$work/corpus.txt"

mkdir -p "$(dirname "$out")"
gzip -n -9 -c "$work/corpus.txt" >"$work/corpus.txt.gz"
mv "$work/corpus.txt.gz" "$out"

txt_sha="$(sha256sum "$work/corpus.txt" | cut -d' ' -f1)"
gz_sha="$(sha256sum "$out" | cut -d' ' -f1)"
echo "make_corpus: $out"
echo "  text: $(wc -c <"$work/corpus.txt") bytes, $(wc -l <"$work/corpus.txt") lines, sha256 $txt_sha"
echo "  gzip: $(wc -c <"$out") bytes, sha256 $gz_sha"
if [ "$txt_sha" != "$EXPECT_TXT_SHA256" ]; then
  echo "make_corpus: warning: the text's sha256 differs from the one data/corpus/README.md records" \
    "($EXPECT_TXT_SHA256): other package versions?" >&2
fi
if [ "$gz_sha" != "$EXPECT_GZ_SHA256" ]; then
  echo "make_corpus: warning: the .gz's sha256 differs from the one data/corpus/README.md records" \
    "($EXPECT_GZ_SHA256): another gzip version, or other text" >&2
fi
