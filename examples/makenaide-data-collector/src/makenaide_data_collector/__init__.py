"""Collects daily and 4-hour Upbit candles into PostgreSQL"""
