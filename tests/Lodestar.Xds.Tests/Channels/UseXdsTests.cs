using Grpc.Net.Client;
using Lodestar.Xds.Channels;
using Lodestar.Xds.Channels.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Xds.Tests.Channels;

/// <summary>The public <c>UseXds</c> channel-options helper.</summary>
public sealed class UseXdsTests
{
    [Fact]
    public void UseXds_NullArguments_Throw()
    {
        using var services = new ServiceCollection().BuildServiceProvider();

        Assert.Throws<ArgumentNullException>("options", () => XdsGrpcChannelOptionsExtensions.UseXds(null!, services));
        Assert.Throws<ArgumentNullException>("services", () => new GrpcChannelOptions().UseXds(null!));
    }

    [Fact]
    public void UseXds_HttpClientSet_ThrowsNamingHttpHandler()
    {
        using var services = new ServiceCollection().BuildServiceProvider();
        using var http = new HttpClient();

        var error = Assert.Throws<InvalidOperationException>(() => new GrpcChannelOptions { HttpClient = http }.UseXds(services));

        Assert.Contains("HttpHandler", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UseXds_OwnHandler_IsWrappedOnceAndKept()
    {
        // Arrange
        using var services = new ServiceCollection().BuildServiceProvider();
        var own = new SocketsHttpHandler();
        var options = new GrpcChannelOptions { HttpHandler = own };

        // Act
        options.UseXds(services).UseXds(services);

        // Assert
        var handler = Assert.IsType<XdsCallHandler>(options.HttpHandler);
        Assert.Same(own, handler.InnerHandler);
        Assert.Same(services, options.ServiceProvider);
        handler.Dispose();
    }

    [Fact]
    public void UseXds_NoHandler_WrapsANewSocketsHttpHandler()
    {
        using var services = new ServiceCollection().BuildServiceProvider();
        var options = new GrpcChannelOptions();

        options.UseXds(services);

        var handler = Assert.IsType<XdsCallHandler>(options.HttpHandler);
        Assert.IsType<SocketsHttpHandler>(handler.InnerHandler);
        handler.Dispose();
    }
}
