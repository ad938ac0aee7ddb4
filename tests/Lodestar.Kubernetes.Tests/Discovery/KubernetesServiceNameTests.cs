using Lodestar.Kubernetes.Discovery.Internal;

namespace Lodestar.Kubernetes.Tests.Discovery;

public sealed class KubernetesServiceNameTests
{
    [Theory]
    [InlineData("orders", "orders", null)]
    [InlineData("orders.shop", "orders", "shop")]
    [InlineData("orders.shop.svc", "orders", "shop")]
    [InlineData("orders.shop.svc.cluster.local", "orders", "shop")]
    [InlineData("Orders.Shop.svc.cluster.local.", "orders", "shop")]
    public void TryParse_ServiceNames_ReadsServiceAndNamespace(string host, string service, string? ns)
    {
        Assert.True(KubernetesServiceName.TryParse(host, "cluster.local", out var parsedService, out var parsedNamespace));
        Assert.Equal((service, ns), (parsedService, parsedNamespace));
    }

    [Theory]
    [InlineData("api.example.com")]
    [InlineData("orders.shop.svc.other.domain")]
    [InlineData("under_score")]
    [InlineData("-orders")]
    [InlineData("")]
    public void TryParse_OtherHosts_Rejected(string host)
        => Assert.False(KubernetesServiceName.TryParse(host, "cluster.local", out _, out _));
}
