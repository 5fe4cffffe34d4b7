import unittest
from textstats import word_count, longest_word, vowel_count


class TextStats(unittest.TestCase):
    def test_words(self):
        self.assertEqual(word_count("a bb  ccc"), 3)

    def test_no_words(self):
        self.assertEqual(word_count("   "), 0)

    def test_longest(self):
        self.assertEqual(longest_word("a bbb cc"), "bbb")

    def test_longest_first_of_equals(self):
        self.assertEqual(longest_word("ab cd"), "ab")

    def test_longest_empty(self):
        self.assertEqual(longest_word(""), "")

    def test_vowels(self):
        self.assertEqual(vowel_count("Hello World"), 3)

    def test_vowels_upper(self):
        self.assertEqual(vowel_count("AEIOU xyz"), 5)
