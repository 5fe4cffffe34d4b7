"""Small text statistics."""


def word_count(text):
    """The number of whitespace-separated words in text."""
    return len(text.split())


def longest_word(text):
    """The longest word in text (the first one when several are as long); "" for no words."""
    words = text.split()
    if not words:
        return ""
    return max(words, key=len)


def vowel_count(text):
    """The number of vowels (a, e, i, o, u, either case) in text."""
    return sum(1 for c in text.lower() if c in "aeiou")
