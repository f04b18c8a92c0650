using OrleansLimiter.Replay;
using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Tracing;

namespace OrleansLimiter.Tests.Replay;

/// <summary>The trace's line format: what is written reads back the same, and a bad line is named by number and field.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class TraceFileTests
{
    private const string Good = """{"time":"2026-12-01T12:00:00.250Z","tenant":"team-a","provider":"openai","model":"gpt-4o-mini","priority":"batch","estimate":{"input":120,"output":1024},"usage":{"input":118,"output":240},"duration":1.5,"maxWait":30}""";

    [Fact]
    public void Record_WrittenThenRead_IsTheSame()
    {
        var record = new CallTraceRecord(
            new DateTimeOffset(2026, 12, 1, 12, 0, 0, 250, TimeSpan.Zero), "team-a", "openai", "gpt-4o-mini", WaitPriority.Batch,
            new TokenCount(120, 1024), new TokenCount(118, 240), TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(30));

        var line = CallTraceFormat.Write(record);

        Assert.Equal(Good, line);
        Assert.Equal(record, CallTraceFormat.Read(line));
    }

    [Fact]
    public void OptionalFields_Missing_TakeTheirDefaults()
    {
        var record = CallTraceFormat.Read("""{"time":"2026-12-01T12:00:00Z","tenant":"t","provider":"openai","estimate":{"input":5,"output":7}}""");

        Assert.Equal((WaitPriority.Normal, (string?)null, (TokenCount?)null, TimeSpan.Zero, (TimeSpan?)null), (record.Priority, record.Model, record.Usage, record.Duration, record.MaxWait));
        Assert.Equal(12, record.Estimate.Total);
    }

    [Theory]
    [InlineData("""{"time":"2026-12-01T12:00:00Z","tenant":"t","provider":"openai","estimate":{"input":-5,"output":7}}""", "line 3: field 'estimate.input' must be a whole number of tokens, 0 or more (was -5)")]
    [InlineData("""{"time":"2026-12-01T12:00:00Z","provider":"openai","estimate":{"input":5,"output":7}}""", "line 3: field 'tenant' is missing")]
    [InlineData("""{"time":"yesterday","tenant":"t","provider":"openai","estimate":{"input":5,"output":7}}""", "line 3: field 'time' must be an ISO 8601 time (was 'yesterday')")]
    [InlineData("""{"time":"2026-12-01T12:00:00Z","tenant":"t","provider":"openai","priority":"urgent","estimate":{"input":5,"output":7}}""", "line 3: field 'priority' must be interactive, normal or batch (was 'urgent')")]
    [InlineData("""{"time":"2026-12-01T12:00:00Z","tenant":"t","provider":"openai","estimate":{"input":5,"output":7},"duration":"long"}""", "line 3: field 'duration' must be a number of seconds from 0 to 86400 (was \"long\")")]
    [InlineData("""{"time":"2026-12-01T12:00:00Z","tenant":"t","provider":"openai"}""", "line 3: field 'estimate' is missing")]
    [InlineData("""{"time": """, "line 3: not a JSON object")]
    public void MalformedLine_IsReportedByNumberAndField(string bad, string expected)
    {
        // Line 2 is blank and skipped; the bad call is on line 3.
        using var reader = new StringReader(Good + "\n\n" + bad + "\n" + Good + "\n");

        var ex = Assert.Throws<TraceFormatException>(() => TraceFile.Read(reader));

        Assert.StartsWith(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GoodFile_ReadsEveryCallWithItsLine_SkippingBlankAndCommentLines()
    {
        using var reader = new StringReader("# recorded by the gateway\n" + Good + "\n\n" + Good + "\n");

        var calls = TraceFile.Read(reader);

        Assert.Equal([2, 4], calls.Select(c => c.Line));
    }
}
