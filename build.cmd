@echo off
rem Restores and builds Microsoft.ML.Zero (Release). build.cmd --test runs the tests; build.cmd --sample runs the main sample.
setlocal
cd /d "%~dp0"
dotnet restore Microsoft.ML.Zero.sln || exit /b 1
dotnet build Microsoft.ML.Zero.sln -c Release --no-restore || exit /b 1
if "%~1"=="--test" (
  dotnet test Microsoft.ML.Zero.sln -c Release --no-build
  exit /b %ERRORLEVEL%
)
if "%~1"=="--sample" (
  dotnet run --project samples\BertSentiment -c Release --no-build
  exit /b %ERRORLEVEL%
)
if not "%~1"=="" (
  echo usage: build.cmd [--test ^| --sample]
  exit /b 2
)
