"""What the checkers under tools/ share for their self-tests: a planted
mistake is caught when the checker fails and says what it was expected to
say."""


def judge(title, result, expect):
    """True when `result` (a finished subprocess.run with text output) failed
    and printed `expect`; prints the verdict either way."""
    if result.returncode != 0 and expect in result.stdout:
        print(f"self-test: caught {title}")
        return True
    print(f"self-test: MISSED {title} (exit {result.returncode}):\n{result.stdout}")
    return False
