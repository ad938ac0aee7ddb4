using System.Text;
using Lodestar.Etcd.Naming.Internal;
using Lodestar.Registration;

namespace Lodestar.Etcd.Tests.Naming;

public sealed class EtcdNamingFormatTests
{
    private static bool Parse(string value, out Lodestar.Endpoints.DiscoveredEndpoint? endpoint, out string? error)
        => EtcdNamingFormat.TryParse(Encoding.UTF8.GetBytes(value), out endpoint, out error);

    [Theory]
    [InlineData("""{"Op":0,"Addr":"10.0.0.5:8080","Metadata":null}""", "10.0.0.5:8080")]
    [InlineData("""{"Addr":"[::1]:8080"}""", "[::1]:8080")]
    [InlineData("""{"Op":0,"Addr":"orders.internal:80","Metadata":"free text"}""", "orders.internal:80")]
    public void TryParse_GoValue_ReturnsEndpoint(string value, string address)
    {
        Assert.True(Parse(value, out var endpoint, out var error), error);
        Assert.Equal(address, endpoint!.Address);
    }

    [Fact]
    public void TryParse_MetadataObject_MapsStringsWeightZoneAndScheme()
    {
        Assert.True(Parse("""{"Op":0,"Addr":"10.0.0.5:8443","Metadata":{"weight":"7","zone":"z1","scheme":"https","n":3,"o":{}}}""", out var endpoint, out _));

        Assert.Equal(7, endpoint!.Weight);
        Assert.Equal("z1", endpoint.Zone);
        Assert.Equal("https", endpoint.Scheme);
        Assert.Equal("3", endpoint.Metadata["n"]);
        Assert.False(endpoint.Metadata.ContainsKey("o"));
    }

    [Fact]
    public void TryParse_DeleteOp_IsWellFormedWithoutEndpoint()
    {
        Assert.True(Parse("""{"Op":1,"Addr":"10.0.0.5:8080"}""", out var endpoint, out _));
        Assert.Null(endpoint);
    }

    [Theory]
    [InlineData("not json", "not JSON")]
    [InlineData("[1]", "not a JSON object")]
    [InlineData("""{"Op":0}""", "Addr")]
    [InlineData("""{"Op":7,"Addr":"10.0.0.5:80"}""", "Op is 7")]
    [InlineData("""{"Op":0,"Addr":"10.0.0.5"}""", "no port")]
    [InlineData("""{"Op":0,"Addr":"10.0.0.5:80","Metadata":{"weight":"heavy"}}""", "weight")]
    public void TryParse_Malformed_SaysWhy(string value, string reason)
    {
        Assert.False(Parse(value, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_Registration_RoundTrips()
    {
        var registration = new ServiceRegistration
        {
            ServiceName = "orders",
            Host = "::1",
            Port = 8443,
            Scheme = "https",
            Metadata = new Dictionary<string, string> { ["zone"] = "z1" },
        };

        var value = EtcdNamingFormat.Format(registration);

        Assert.Equal("""{"Op":0,"Addr":"[::1]:8443","Metadata":{"scheme":"https","zone":"z1"}}""", value);
        Assert.True(Parse(value, out var endpoint, out _));
        Assert.Equal("https://[::1]:8443", endpoint!.ToString());
        Assert.Equal("z1", endpoint.Zone);
    }

    [Fact]
    public void InstanceKey_DefaultPrefix_IsGoTargetLayout()
    {
        Assert.Equal("orders/i-1", EtcdNamingFormat.InstanceKey(string.Empty, "orders", "i-1"));
        Assert.Equal("/services/orders/", EtcdNamingFormat.ServicePrefix("/services/", "orders"));
    }
}
