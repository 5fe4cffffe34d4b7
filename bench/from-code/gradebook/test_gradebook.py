import unittest

from gradebook import average, letter, top_student


class GradeBook(unittest.TestCase):
    def test_average(self):
        self.assertEqual(average([80, 90, 95]), 88.3)

    def test_average_empty(self):
        self.assertEqual(average([]), 0.0)

    def test_letters(self):
        self.assertEqual([letter(s) for s in (95, 90, 85, 72, 60, 59)], ["A", "A", "B", "C", "D", "F"])

    def test_top(self):
        self.assertEqual(top_student({"ann": [70, 80], "bob": [90, 85]}), "bob")

    def test_top_tie(self):
        self.assertEqual(top_student({"zed": [80], "amy": [80]}), "amy")

    def test_top_empty(self):
        self.assertIsNone(top_student({}))
