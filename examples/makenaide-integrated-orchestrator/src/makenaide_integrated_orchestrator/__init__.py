"""Runs the Makenaide trading app every 4 hours: RDS and EC2 up, app launched, both stopped"""
