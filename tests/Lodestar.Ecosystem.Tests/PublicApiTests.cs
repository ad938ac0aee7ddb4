using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Ecosystem.Tests;

public sealed class PublicApiTests
{
    [Fact]
    public void AddLodestarServiceEndpointProvider_NullServices_Throws()
    {
        var error = Assert.Throws<ArgumentNullException>(() => LodestarServiceDiscoveryServiceCollectionExtensions.AddLodestarServiceEndpointProvider(null!));

        Assert.Equal("services", error.ParamName);
    }

    [Fact]
    public void AddLodestarDestinationResolver_NullBuilder_Throws()
    {
        var error = Assert.Throws<ArgumentNullException>(() => LodestarReverseProxyBuilderExtensions.AddLodestarDestinationResolver(null!));

        Assert.Equal("builder", error.ParamName);
    }

    [Fact]
    public void AddLodestarServiceEndpointProvider_WithoutLodestar_AddsLodestarToo()
    {
        var services = new ServiceCollection();

        services.AddLodestarServiceEndpointProvider();

        Assert.Contains(services, d => d.ServiceType == typeof(Lodestar.Discovery.IEndpointResolver));
    }
}
