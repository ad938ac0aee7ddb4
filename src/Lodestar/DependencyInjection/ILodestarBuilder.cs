using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.DependencyInjection;

/// <summary>Configures Lodestar's sources and policies; returned by <c>AddLodestar</c>.</summary>
public interface ILodestarBuilder
{
    /// <summary>Gets the service collection being configured.</summary>
    IServiceCollection Services { get; }
}
