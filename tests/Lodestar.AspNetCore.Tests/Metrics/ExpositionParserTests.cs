using Lodestar.AspNetCore.Tests.Infrastructure;

namespace Lodestar.AspNetCore.Tests.Metrics;

/// <summary>The parser the exporter tests rely on must itself reject what the format forbids.</summary>
public sealed class ExpositionParserTests
{
    [Theory]
    [InlineData("a_total 1\n")] // sample before its TYPE
    [InlineData("# TYPE a_total counter\na_total{x=\"y} 1\n")] // unterminated value
    [InlineData("# TYPE a_total counter\na_total{x=\"\\t\"} 1\n")] // bad escape
    [InlineData("# TYPE a_total counter\na_total{x=\"1\",x=\"2\"} 1\n")] // label twice
    [InlineData("# TYPE a_total counter\na_total 1\na_total 2\n")] // duplicate series
    [InlineData("# TYPE a counter\na 1\n")] // counter without _total
    [InlineData("# TYPE a.b gauge\na.b 1\n")] // dot in a name
    [InlineData("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n")] // family split in two
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n")] // decreasing buckets
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n")] // +Inf != _count
    [InlineData("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n")] // no +Inf
    [InlineData("# TYPE a gauge\na 1")] // no final line feed
    [InlineData("# TYPE a gauge\na 1,5\n")] // bad float
    public void Parse_Malformed_Throws(string text)
        => Assert.Throws<FormatException>(() => ExpositionParser.Parse(text));

    [Fact]
    public void Parse_WellFormed_ReadsEscapedValues()
    {
        // Act
        var families = ExpositionParser.Parse("# HELP a_total Help \\\\ and \\n.\n# TYPE a_total counter\na_total{x=\"q\\\"b\\\\n\\n\"} 1.5e3\n");

        // Assert
        Assert.Equal("Help \\ and \n.", families["a_total"].Help);
        Assert.Equal("q\"b\\n\n", families["a_total"].Samples.Single().Labels["x"]);
        Assert.Equal(1500, families["a_total"].Samples.Single().Value);
    }
}
