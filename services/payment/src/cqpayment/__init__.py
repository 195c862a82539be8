"""cqpayment"""
