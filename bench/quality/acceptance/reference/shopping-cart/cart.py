class Cart:
    def __init__(self):
        self.items = {}; self.discount = 0
    def add(self, name, price, quantity=1):
        if name in self.items: self.items[name][1] += quantity
        else: self.items[name] = [price, quantity]
    def total(self):
        t = sum(p * q for p, q in self.items.values())
        return t * (100 - self.discount) // 100
    def count(self): return sum(q for _, q in self.items.values())
    def remove(self, name): del self.items[name]
    def apply_discount(self, percent):
        if not isinstance(percent, int) or not 0 <= percent <= 100: raise ValueError(percent)
        self.discount = percent
