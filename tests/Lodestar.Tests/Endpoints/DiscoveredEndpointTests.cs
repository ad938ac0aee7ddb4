using Lodestar.Endpoints;

namespace Lodestar.Tests.Endpoints;

public sealed class DiscoveredEndpointTests
{
    [Theory]
    [InlineData("http://10.0.0.5:8080", "10.0.0.5", 8080, "http")]
    [InlineData("https://orders.shop.svc:8443", "orders.shop.svc", 8443, "https")]
    [InlineData("http://example.com", "example.com", 80, "http")]
    [InlineData("10.0.0.5:8080", "10.0.0.5", 8080, null)]
    [InlineData("[::1]:5000", "::1", 5000, null)]
    [InlineData("http://[fe80::1]:81", "fe80::1", 81, "http")]
    [InlineData(" host-a:1 ", "host-a", 1, null)]
    public void TryParse_ValidText_ReturnsEndpoint(string text, string host, int port, string? scheme)
    {
        Assert.True(DiscoveredEndpoint.TryParse(text, 0, out var endpoint, out var error), error);
        Assert.Equal(host, endpoint.Host);
        Assert.Equal(port, endpoint.Port);
        Assert.Equal(scheme, endpoint.Scheme);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("htp:/bad", "not a number")]
    [InlineData("ftp://x:21", "scheme 'ftp'")]
    [InlineData("http://x:80/path", "no path")]
    [InlineData("host:0", "outside 1-65535")]
    [InlineData("host:70000", "outside 1-65535")]
    [InlineData("host", "no port")]
    [InlineData("[::1:80", "never closes")]
    [InlineData("bad_host!:80", "neither an IP address nor a valid DNS name")]
    public void TryParse_InvalidText_SaysWhatIsWrong(string text, string expected)
    {
        Assert.False(DiscoveredEndpoint.TryParse(text, 0, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_NegativeWeight_Throws()
    {
        var error = Assert.Throws<ArgumentException>(() => DiscoveredEndpoint.Create("10.0.0.1", 80, weight: -1));
        Assert.Contains("weight -1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Equals_SameAddressOtherAttributes_IsSameInstanceButNotIdentical()
    {
        var a = DiscoveredEndpoint.Create("10.0.0.1", 80, "http", weight: 1);
        var b = DiscoveredEndpoint.Create("10.0.0.1", 80, "http", weight: 5, zone: "z");
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.False(a.IsIdenticalTo(b));
        Assert.Equal("[::1]:80", DiscoveredEndpoint.Create("::1", 80).Address);
    }

    [Fact]
    public void EndpointSet_Create_DropsDuplicatesKeepingTheFirst()
    {
        var set = EndpointSet.Create("orders", "test",
            [DiscoveredEndpoint.Create("10.0.0.1", 80, weight: 2), DiscoveredEndpoint.Create("10.0.0.1", 80, weight: 9), DiscoveredEndpoint.Create("10.0.0.2", 80)],
            1, DateTimeOffset.UnixEpoch);
        Assert.Equal(2, set.Count);
        Assert.Equal(2, set.Endpoints[0].Weight);
    }
}
